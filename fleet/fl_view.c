/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A membership view: the members a source said exist the last time it
 * answered, and how long ago that was. Where the source stops answering
 * (etcd down), the view stays as it was, marked stale with the reason, so a
 * reader keeps working from the last view and can say so.
 *
 * etcd is read by range + revision polling of the prefix rather than the
 * gateway's watch stream: every member rewrites its record about once a
 * second (its load), so a watcher would receive that many events anyway; a
 * range of the prefix costs about the same, resynchronises the whole view
 * each time (no missed event to recover from), and notices an unreachable
 * etcd at the next poll, where an idle stream would notice only through
 * progress notifications (every 10 minutes by default in etcd 3.4).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/djc.h"
#include "djinn/common.h"
#include "fl.h"

#define TAG "fleet"

void fl_view_init(struct fl_view *v)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->lock, NULL);
	snprintf(v->error, sizeof(v->error), "not read yet");
}

void fl_view_fini(struct fl_view *v)
{
	free(v->members);
	v->members = NULL;
	pthread_mutex_destroy(&v->lock);
}

int fl_view_set(struct fl_view *v, const struct fl_member *members, int n, int64_t revision)
{
	struct fl_member *copy = n > 0 ? malloc((size_t)n * sizeof(*copy)) : NULL;

	if (n > 0 && copy == NULL)
		return -ENOMEM;
	if (n > 0)
		memcpy(copy, members, (size_t)n * sizeof(*copy));
	pthread_mutex_lock(&v->lock);
	free(v->members);
	v->members = copy;
	v->n = n;
	v->revision = revision;
	v->confirmed_ns = djc_time_ns();
	if (v->stale)
		DJC_LOG(DJ_LOG_NOTICE, TAG, "membership source answers again (%d members)", n);
	v->stale = 0;
	v->error[0] = '\0';
	pthread_mutex_unlock(&v->lock);
	return 0;
}

void fl_view_fail(struct fl_view *v, const char *why)
{
	pthread_mutex_lock(&v->lock);
	if (!v->stale)
		DJC_LOG(DJ_LOG_WARN, TAG, "membership source unreachable, keeping the last view: %s",
			why);
	v->stale = 1;
	snprintf(v->error, sizeof(v->error), "%s", why);
	pthread_mutex_unlock(&v->lock);
}

int fl_view_get(struct fl_view *v, struct fl_member **members, int *n, uint64_t *age_ms,
		int *stale, char *why)
{
	int rc = 0;

	pthread_mutex_lock(&v->lock);
	*n = v->n;
	*members = NULL;
	if (v->n > 0) {
		*members = malloc((size_t)v->n * sizeof(**members));
		if (*members != NULL)
			memcpy(*members, v->members, (size_t)v->n * sizeof(**members));
		else
			rc = -ENOMEM;
	}
	*age_ms = v->confirmed_ns == 0 ? UINT64_MAX :
		  (djc_time_ns() - v->confirmed_ns) / 1000000ull;
	*stale = v->stale || v->confirmed_ns == 0;
	if (why != NULL)
		snprintf(why, FL_WHY_MAX, "%s", v->error);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

struct range_acc {
	struct fl_member *members;
	int n;
};

static void on_record(const char *key, const char *value, void *arg)
{
	struct range_acc *acc = arg;
	char why[FL_WHY_MAX];
	cJSON *obj;

	if (acc->n == FL_MAX_MEMBERS)
		return;
	obj = cJSON_Parse(value);
	if (obj != NULL && fl_member_from_json(obj, &acc->members[acc->n], why) == 0)
		acc->n++;
	else
		DJC_LOG(DJ_LOG_WARN, TAG, "etcd key %s: not a member record, skipped", key);
	cJSON_Delete(obj);
}

int fl_view_read_etcd(struct fl_view *v, struct fl_etcd *etcd, const char *prefix)
{
	struct range_acc acc = {.members = calloc(FL_MAX_MEMBERS, sizeof(struct fl_member))};
	int64_t revision = 0;
	int rc = acc.members == NULL ? -ENOMEM :
		 fl_etcd_range_prefix(etcd, prefix, on_record, &acc, &revision);

	if (rc == 0)
		rc = fl_view_set(v, acc.members, acc.n, revision);
	else
		fl_view_fail(v, acc.members == NULL ? "out of memory" : fl_etcd_error(etcd));
	free(acc.members);
	return rc;
}

/* ---- the loop ---------------------------------------------------------------- */

int fl_loop_start(struct fl_loop *l, const char *name, void *(*fn)(void *), void *arg)
{
	pthread_condattr_t attr;
	int rc;

	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&l->wake, &attr);
	pthread_condattr_destroy(&attr);
	rc = -pthread_create(&l->thread, NULL, fn, arg);
	if (rc == 0)
		pthread_setname_np(l->thread, name);
	l->running = rc == 0;
	return rc;
}

int fl_loop_sleep(struct fl_loop *l, uint64_t ns)
{
	struct timespec ts;
	int go;

	djc_deadline_ts(ns, &ts);
	pthread_mutex_lock(&l->lock);
	if (!l->stop)
		pthread_cond_timedwait(&l->wake, &l->lock, &ts);
	go = !l->stop;
	pthread_mutex_unlock(&l->lock);
	return go;
}

void fl_loop_stop(struct fl_loop *l)
{
	if (!l->running)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = 1;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	l->running = 0;
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
}
