# SPDX-License-Identifier: BSD-3-Clause
"""PyTorch's operations in terms of Djinn's (docs/OPERATIONS.md).

One set of builders serves both frontends: the aten:: names of the
coordinator (run as one batch) and the torch functions LazyTensor captures
(recorded into a lazy graph). A builder gets a recorder and the operation's
arguments in aten's order and records Djinn operations through
    rec.tensor(x)               a tensor argument as a value of the recorder
    rec.scalar(v, like)         a Python number as a 0-d tensor of like's dtype
    rec.op(name, values, attrs) one Djinn operation: a value
    rec.shape(v), rec.dtype(v)  what the recorder infers (the C inference)
and returns the result's value. Where Djinn cannot give exactly what torch
would (an attribute we lack, a dtype promotion, a step), it raises
Unsupported: the coordinator refuses with NotSupportedError, LazyTensor runs
that operation locally.
"""
import math

# The server's operations (docs/OPERATIONS.md).
OPERATIONS = ("matmul", "add", "sub", "mul", "div", "relu", "sigmoid", "tanh", "exp", "log",
              "sqrt", "gelu", "silu", "sum", "mean", "softmax", "layer_norm", "linear",
              "transpose", "reshape", "cat", "embedding", "narrow",
              "scaled_dot_product_attention", "slice_write", "argmax", "rms_norm")
FLOAT_DTYPES = ("float32", "float16", "bfloat16")
_FINFO_EPS = {"float32": 2.0 ** -23, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}


class Unsupported(Exception):
    """This call cannot be done exactly by Djinn's operations (the reason)."""


def _dim(d, ndim):
    if not isinstance(d, int) or isinstance(d, bool):
        raise Unsupported(f"dim {d!r} is not an integer")
    n = max(ndim, 1)
    if not -n <= d < n:
        raise Unsupported(f"dim {d} out of range for {ndim} dimensions")
    return d % n


def _one_dim(dim):
    """torch's dim argument (int, or a list/tuple of one) as an int, or None."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        if len(dim) != 1:
            raise Unsupported(f"reduction over dims {tuple(dim)} (one dim or all)")
        dim = dim[0]
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise Unsupported(f"dim {dim!r}")
    return dim


def _scalar_ok(v, dtype, what):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Unsupported(f"{what}: {type(v).__name__} operand")
    if isinstance(v, float) and dtype not in FLOAT_DTYPES:
        raise Unsupported(f"{what}: a float scalar with a {dtype} tensor promotes to float")


def _operands(rec, a, b, what):
    """Two operands of a binary op as values of one dtype; a number becomes a
    0-d tensor of the other side's dtype (torch's wrapped-number rule)."""
    a_num = isinstance(a, (int, float)) and not isinstance(a, bool)
    b_num = isinstance(b, (int, float)) and not isinstance(b, bool)
    if a_num and b_num:
        raise Unsupported(f"{what}: two numbers")
    if a_num:
        vb = rec.tensor(b)
        _scalar_ok(a, rec.dtype(vb), what)
        return rec.scalar(a, vb), vb
    va = rec.tensor(a)
    if b_num:
        _scalar_ok(b, rec.dtype(va), what)
        return va, rec.scalar(b, va)
    vb = rec.tensor(b)
    if rec.dtype(va) != rec.dtype(vb):
        raise Unsupported(f"{what}: {rec.dtype(va)} with {rec.dtype(vb)} (type promotion)")
    return va, vb


def binary(name):
    def build(rec, a, b, alpha=1, **kw):
        _no_out(kw, name)
        if name == "div" and kw.get("rounding_mode") is not None:
            raise Unsupported(f"div rounding_mode={kw['rounding_mode']!r}")
        va, vb = _operands(rec, a, b, name)
        if alpha != 1:
            if name not in ("add", "sub"):
                raise Unsupported(f"{name} alpha")
            _scalar_ok(alpha, rec.dtype(vb), f"{name} alpha")
            vb = rec.op("mul", [vb, rec.scalar(alpha, vb)])
        return rec.op(name, [va, vb])
    return build


def rsub(rec, a, b, alpha=1, **kw):
    return binary("sub")(rec, b, a, alpha=alpha, **kw)


def unary(name, floats_only=False):
    def build(rec, x, *rest, **kw):
        _no_out(kw, name)
        kw.pop("inplace", None)
        if rest or kw:
            raise Unsupported(f"{name} with arguments {rest or kw}")
        v = rec.tensor(x)
        if floats_only and rec.dtype(v) not in FLOAT_DTYPES:
            raise Unsupported(f"{name} of {rec.dtype(v)} (torch promotes to float)")
        return rec.op(name, [v])
    return build


def _no_out(kw, what):
    if kw.pop("out", None) is not None:
        raise Unsupported(f"{what} out=")


def neg(rec, x):
    v = rec.tensor(x)
    return rec.op("mul", [v, rec.scalar(-1, v)])


def rsqrt(rec, x):
    v = rec.tensor(x)
    if rec.dtype(v) not in FLOAT_DTYPES:
        raise Unsupported("rsqrt of an integer tensor")
    return rec.op("div", [rec.scalar(1, v), rec.op("sqrt", [v])])


def pow_(rec, x, exponent):
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float)):
        raise Unsupported("pow with a tensor exponent")
    v = rec.tensor(x)
    if exponent == 2:
        return rec.op("mul", [v, v])
    if exponent == 1:
        return rec.op("mul", [v, rec.scalar(1, v)])
    if rec.dtype(v) in FLOAT_DTYPES:
        if exponent == 0.5:
            return rec.op("sqrt", [v])
        if exponent == -0.5:
            return rsqrt(rec, v)
        if exponent == -1:
            return rec.op("div", [rec.scalar(1, v), v])
    raise Unsupported(f"pow with exponent {exponent}")


def gelu(rec, x, approximate="none"):
    if approximate != "none":
        raise Unsupported(f"gelu approximate={approximate!r} (Djinn's gelu is the erf form)")
    return unary("gelu")(rec, x)


def softmax(rec, x, dim=None, dtype=None, half_to_float=False, **kw):
    kw.pop("_stacklevel", None)
    if dim is None or dtype is not None or half_to_float or kw:
        raise Unsupported("softmax without a dim, or with a dtype")
    v = rec.tensor(x)
    return rec.op("softmax", [v], {"dim": _one_dim(dim)})


def _reduction(name):
    def build(rec, x, dim=None, keepdim=False, dtype=None, **kw):
        _no_out(kw, name)
        if dtype is not None or kw:
            raise Unsupported(f"{name} with dtype")
        v = rec.tensor(x)
        if name == "mean" and rec.dtype(v) not in FLOAT_DTYPES:
            raise Unsupported("mean of an integer tensor")
        d = _one_dim(dim)
        attrs = {} if d is None else {"dim": d}
        if keepdim:
            if d is None:
                out = rec.op(name, [v])
                return reshape(rec, out, [1] * len(rec.shape(v)))
            attrs["keepdim"] = True
        return rec.op(name, [v], attrs or None)
    return build


def linear(rec, x, weight, bias=None):
    ins = [rec.tensor(x), rec.tensor(weight)] + ([] if bias is None else [rec.tensor(bias)])
    _same_dtype(rec, ins, "linear")
    return rec.op("linear", ins)


def _same_dtype(rec, vals, what):
    if len({rec.dtype(v) for v in vals}) > 1:
        raise Unsupported(f"{what}: mixed dtypes {[rec.dtype(v) for v in vals]}")


def layer_norm(rec, x, normalized_shape, weight=None, bias=None, eps=1e-5, *rest, **kw):
    if weight is None and bias is not None:
        raise Unsupported("layer_norm with a bias but no weight")
    ins = [rec.tensor(x)] + [rec.tensor(t) for t in (weight, bias) if t is not None]
    _same_dtype(rec, ins, "layer_norm")
    return rec.op("layer_norm", ins, {"normalized_shape": [int(s) for s in normalized_shape],
                                      "eps": float(eps)})


def rms_norm(rec, x, normalized_shape, weight=None, eps=None):
    v = rec.tensor(x)
    shape = rec.shape(v)
    if list(normalized_shape) != list(shape[-1:]):
        raise Unsupported("rms_norm over more than the last dimension")
    if eps is None:  # torch: the dtype's machine epsilon
        eps = _FINFO_EPS.get(rec.dtype(v), 1e-6)
    ins = [v] + ([] if weight is None else [rec.tensor(weight)])
    _same_dtype(rec, ins, "rms_norm")
    return rec.op("rms_norm", ins, {"eps": float(eps)})


def transpose(rec, x, dim0, dim1):
    v = rec.tensor(x)
    n = len(rec.shape(v))
    if n < 2:
        return identity(rec, v)
    return rec.op("transpose", [v], {"dims": [_dim(dim0, n), _dim(dim1, n)]})


def t(rec, x):
    v = rec.tensor(x)
    n = len(rec.shape(v))
    if n > 2:
        raise Unsupported("t() of more than 2 dimensions")
    return transpose(rec, v, 0, 1) if n == 2 else identity(rec, v)


def permute(rec, x, dims):
    v = rec.tensor(x)
    n = len(rec.shape(v))
    perm = [_dim(d, n) for d in dims]
    if sorted(perm) != list(range(n)):
        raise Unsupported(f"permute {tuple(dims)} is not a permutation")
    return rec.op("transpose", [v], {"perm": perm})


def identity(rec, x):
    """A copy of x (a reshape to its own shape): clone, contiguous."""
    v = rec.tensor(x)
    return rec.op("reshape", [v], {"shape": list(rec.shape(v))})


def reshape(rec, x, shape):
    v = rec.tensor(x)
    shape = [int(s) for s in shape]
    if shape == list(rec.shape(v)):
        return v if rec.reuses_values else identity(rec, v)
    return rec.op("reshape", [v], {"shape": shape})


def flatten(rec, x, start_dim=0, end_dim=-1):
    v = rec.tensor(x)
    shape = list(rec.shape(v))
    if not shape:
        return reshape(rec, v, [1])
    s, e = _dim(start_dim, len(shape)), _dim(end_dim, len(shape))
    if s > e:
        raise Unsupported("flatten with start_dim after end_dim")
    return reshape(rec, v, shape[:s] + [math.prod(shape[s:e + 1])] + shape[e + 1:])


def unsqueeze(rec, x, dim):
    v = rec.tensor(x)
    shape = list(rec.shape(v))
    d = dim + len(shape) + 1 if dim < 0 else dim
    if not 0 <= d <= len(shape):
        raise Unsupported(f"unsqueeze dim {dim}")
    return reshape(rec, v, shape[:d] + [1] + shape[d:])


def squeeze(rec, x, dim=None):
    v = rec.tensor(x)
    shape = list(rec.shape(v))
    if dim is None:
        return reshape(rec, v, [s for s in shape if s != 1])
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    drop = {_dim(d, len(shape)) for d in dims} if shape else set()
    return reshape(rec, v, [s for i, s in enumerate(shape) if not (i in drop and s == 1)])


def cat(rec, tensors, dim=0, **kw):
    _no_out(kw, "cat")
    vals = [rec.tensor(x) for x in tensors]
    if not vals or len(vals) > 16:
        raise Unsupported(f"cat of {len(vals)} tensors (1 to 16)")
    _same_dtype(rec, vals, "cat")
    if len(vals) == 1:
        return identity(rec, vals[0])
    return rec.op("cat", vals, {"dim": _dim(dim, len(rec.shape(vals[0])))})


def stack(rec, tensors, dim=0, **kw):
    vals = [rec.tensor(x) for x in tensors]
    if not vals:
        raise Unsupported("stack of nothing")
    n = len(rec.shape(vals[0])) + 1
    d = _dim(dim, n)
    return cat(rec, [unsqueeze(rec, v, d) for v in vals], d, **kw)


def embedding_aten(rec, weight, indices, padding_idx=-1, scale_grad_by_freq=False,
                   sparse=False):
    """aten::embedding(weight, indices, ...): padding_idx only shapes gradients."""
    return rec.op("embedding", [rec.tensor(indices), rec.tensor(weight)])


def embedding_torch(rec, input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
                    scale_grad_by_freq=False, sparse=False):
    """F.embedding(input, weight, ...): max_norm renormalises the weight in place."""
    if max_norm is not None:
        raise Unsupported("embedding with max_norm (writes the weight)")
    return embedding_aten(rec, weight, input)


def narrow(rec, x, dim, start, length):
    v = rec.tensor(x)
    shape = rec.shape(v)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in (start, length)):
        raise Unsupported("narrow with tensor bounds")
    return rec.op("narrow", [v], {"dim": _dim(dim, len(shape)), "start": start,
                                   "length": length})


def _slice_bounds(rec, v, dim, start, end, step, what):
    """(dim, start, length) of x[start:end] along dim, Python's clamping."""
    shape = rec.shape(v)
    d = _dim(dim, len(shape))
    if step not in (None, 1):
        raise Unsupported(f"{what} with step {step}")
    s, e, _ = slice(start, end).indices(shape[d])
    return d, s, max(e - s, 0)


def slice_(rec, x, dim=0, start=None, end=None, step=1):
    """aten::slice: x[start:end] along dim."""
    v = rec.tensor(x)
    d, s, n = _slice_bounds(rec, v, dim, start, end, step, "slice")
    return rec.op("narrow", [v], {"dim": d, "start": s, "length": n})


def select(rec, x, dim, index):
    v = rec.tensor(x)
    shape = list(rec.shape(v))
    d = _dim(dim, len(shape))
    if not -shape[d] <= index < shape[d]:
        raise Unsupported(f"index {index} out of range for size {shape[d]}")
    piece = rec.op("narrow", [v], {"dim": d, "start": index % shape[d], "length": 1})
    return reshape(rec, piece, shape[:d] + shape[d + 1:])


def slice_scatter(rec, x, src, dim=0, start=None, end=None, step=1):
    """aten::slice_scatter: out of place, so the write goes into a copy of x."""
    v = rec.tensor(x)
    d, s, n = _slice_bounds(rec, v, dim, start, end, step, "slice_scatter")
    vs = rec.tensor(src)
    if rec.shape(vs)[d] != n:
        raise Unsupported("slice_scatter: src does not fill the slice")
    return rec.op("slice_write", [identity(rec, v), vs], {"dim": d, "start": s})


def sdpa(rec, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
         enable_gqa=False):
    if attn_mask is not None or dropout_p or enable_gqa:
        raise Unsupported("scaled_dot_product_attention with attn_mask, dropout or GQA")
    ins = [rec.tensor(query), rec.tensor(key), rec.tensor(value)]
    _same_dtype(rec, ins, "scaled_dot_product_attention")
    attrs = {"is_causal": bool(is_causal)}
    if scale is not None:
        attrs["scale"] = float(scale)
    return rec.op("scaled_dot_product_attention", ins, attrs)


def argmax(rec, x, dim=None, keepdim=False, **kw):
    _no_out(kw, "argmax")
    v = rec.tensor(x)
    attrs = {"keepdim": bool(keepdim)} if keepdim else {}
    if dim is not None:
        attrs["dim"] = _dim(dim, len(rec.shape(v)))
    elif keepdim:
        # torch: the flat index in a tensor of ones of the input's rank.
        return reshape(rec, rec.op("argmax", [v]), [1] * len(rec.shape(v)))
    return rec.op("argmax", [v], attrs or None)


def split(rec, x, split_size_or_sections, dim=0):
    """torch.split: views along dim (narrow copies here)."""
    v = rec.tensor(x)
    shape = rec.shape(v)
    d = _dim(dim, len(shape))
    size = shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise Unsupported("split size <= 0")
        sections = [min(step, size - s) for s in range(0, size, step)] or [0]
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != size:
            raise Unsupported("split sections do not add up to the size")
    out, start = [], 0
    for n in sections:
        out.append(rec.op("narrow", [v], {"dim": d, "start": start, "length": n}))
        start += n
    return tuple(out)


def unbind(rec, x, dim=0):
    v = rec.tensor(x)
    shape = rec.shape(v)
    d = _dim(dim, len(shape))
    return tuple(select(rec, v, d, i) for i in range(shape[d]))


def chunk(rec, x, chunks, dim=0):
    v = rec.tensor(x)
    size = rec.shape(v)[_dim(dim, len(rec.shape(v)))]
    return split(rec, v, max(-(-size // chunks), 1), dim)


def dropout(rec, x, p=0.5, train=False, inplace=False):
    if train and p > 0:
        raise Unsupported("dropout in training mode")
    return rec.tensor(x) if rec.reuses_values else identity(rec, x)


def _variadic_shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        return list(shape[0])
    return list(shape)


# aten:: names -> builders (arguments in aten's schema order).
ATEN_OPS = {
    "aten::matmul": lambda rec, a, b: rec.op("matmul", [rec.tensor(a), rec.tensor(b)]),
    "aten::mm": lambda rec, a, b: rec.op("matmul", [rec.tensor(a), rec.tensor(b)]),
    "aten::bmm": lambda rec, a, b: rec.op("matmul", [rec.tensor(a), rec.tensor(b)]),
    "aten::add": binary("add"),
    "aten::sub": binary("sub"),
    "aten::rsub": rsub,
    "aten::mul": binary("mul"),
    "aten::div": binary("div"),
    "aten::neg": neg,
    "aten::relu": unary("relu"),
    "aten::sigmoid": unary("sigmoid", floats_only=True),
    "aten::tanh": unary("tanh", floats_only=True),
    "aten::exp": unary("exp", floats_only=True),
    "aten::log": unary("log", floats_only=True),
    "aten::sqrt": unary("sqrt", floats_only=True),
    "aten::rsqrt": rsqrt,
    "aten::pow": pow_,
    "aten::gelu": gelu,
    "aten::silu": unary("silu"),
    "aten::softmax": softmax,
    "aten::_softmax": lambda rec, x, dim, half_to_float=False: softmax(
        rec, x, dim, half_to_float=half_to_float),
    "aten::sum": _reduction("sum"),
    "aten::mean": _reduction("mean"),
    "aten::linear": linear,
    "aten::layer_norm": layer_norm,
    "aten::rms_norm": rms_norm,
    "aten::transpose": transpose,
    "aten::t": t,
    "aten::permute": permute,
    "aten::reshape": reshape,
    "aten::view": reshape,
    "aten::flatten": flatten,
    "aten::unsqueeze": unsqueeze,
    "aten::squeeze": squeeze,
    "aten::clone": lambda rec, x, memory_format=None: identity(rec, x),
    "aten::contiguous": lambda rec, x, memory_format=None: identity(rec, x),
    "aten::cat": cat,
    "aten::stack": stack,
    "aten::embedding": embedding_aten,
    "aten::narrow": narrow,
    "aten::slice": slice_,
    "aten::select": select,
    "aten::slice_scatter": slice_scatter,
    "aten::scaled_dot_product_attention": sdpa,
    "aten::argmax": argmax,
}


def aten_builder(name):
    """The builder of an aten:: name, or of one of our own operation names
    (then the arguments are its tensors and the keywords its attributes)."""
    if name in ATEN_OPS:
        return ATEN_OPS[name]
    if name in OPERATIONS:
        return lambda rec, *tensors, **attrs: rec.op(
            name, [rec.tensor(x) for x in tensors], attrs or None)
    return None
