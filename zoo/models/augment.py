"""DiffAugment: differentiable augmentation of D's inputs (Zhao et al., "Differentiable
Augmentation for Data-Efficient GAN Training", NeurIPS 2020).

The same random transforms are applied to real and to generated images before
the discriminator, in D's update and in G's, and they are differentiable, so G
learns through them; D then cannot memorise a small training set. The policy
string is the paper's: a comma-separated subset of

- "color": brightness + U(-0.5, 0.5), saturation x U(0, 2) around the pixel's
  channel mean, contrast x U(0.5, 1.5) around the image mean;
- "translation": a shift of up to 1/8 of the image size in each direction
  (a uniform integer in [-s, s], s = int(size / 8 + 0.5)), zero padded;
- "cutout": a zeroed square of half the image size at a uniform position
  (clipped at the border),

as in the authors' `DiffAugment_pytorch.py`; and, not in DiffAugment's policy,
- "flip": a horizontal flip with probability 1/2 (with "translation", the
  standard CIFAR training augmentation of a classifier: a 4-pixel shift, i.e.
  a random 32x32 crop of the zero-padded 40x40 image, and a flip),

all on channels-last images in
[-1, 1]. Each image gets its own draw. The draws come from the model's seeded
noise (`AdversarialModel.noise`), so training stays reproducible and a resumed
run exact. Translation is two products with one-hot shift matrices per image
(exact: each output pixel is one input pixel times 1, or 0), which runs under
jit on every backend and passes gradients to the input.

    params = sample(policy, n, image_shape, model.noise)
    x_aug = apply(policy, x, params)
"""

import keras
from keras import ops

POLICIES = ("color", "translation", "cutout", "flip")
TRANSLATION_RATIO, CUTOUT_RATIO = 0.125, 0.5


def check_policy(policy, name="diff_augment"):
    """The policy as a normalised string ("" or None: no augmentation -> None);
    `name`: the argument's, for the error."""
    if policy is None or policy == "":
        return None
    if not isinstance(policy, str):
        raise ValueError(
            f'{name} must be a policy string such as "color,translation,cutout"; got {policy!r}.'
        )
    parts = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in parts if p not in POLICIES]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ValueError(
            f"{name} must be a comma-separated subset of {', '.join(POLICIES)} "
            f'(e.g. "color,translation,cutout"); got {policy!r}.'
        )
    return ",".join(parts)


def _shifts(size, ratio):
    return int(size * ratio + 0.5)


def sample(policy, n, image_shape, draw):
    """The random parameters of `policy` for n images: a dict of tensors.

    `draw(fn, shape, **kwargs)` draws `fn(shape, seed=..., **kwargs)`, e.g. a
    model's `noise`."""
    h, w = int(image_shape[0]), int(image_shape[1])
    params = {}
    names = policy.split(",") if policy else []
    if "color" in names:
        params["brightness"] = draw(keras.random.uniform, (n, 1, 1, 1), minval=-0.5, maxval=0.5)
        params["saturation"] = draw(keras.random.uniform, (n, 1, 1, 1), minval=0.0, maxval=2.0)
        params["contrast"] = draw(keras.random.uniform, (n, 1, 1, 1), minval=0.5, maxval=1.5)
    if "translation" in names:
        sh, sw = _shifts(h, TRANSLATION_RATIO), _shifts(w, TRANSLATION_RATIO)
        params["shift_h"] = draw(keras.random.randint, (n,), minval=-sh, maxval=sh + 1)
        params["shift_w"] = draw(keras.random.randint, (n,), minval=-sw, maxval=sw + 1)
    if "cutout" in names:
        ch, cw = _shifts(h, CUTOUT_RATIO), _shifts(w, CUTOUT_RATIO)
        params["cutout_h"] = draw(keras.random.randint, (n,), minval=0, maxval=h + (1 - ch % 2))
        params["cutout_w"] = draw(keras.random.randint, (n,), minval=0, maxval=w + (1 - cw % 2))
    if "flip" in names:
        params["flip"] = draw(keras.random.randint, (n,), minval=0, maxval=2)
    return params


def apply(policy, x, params):
    """x (n, h, w, c) transformed by `policy` with `params` from `sample`, in order
    color, translation, cutout (the paper's), then flip."""
    names = policy.split(",") if policy else []
    for name in POLICIES:
        if name in names:
            x = _FUNCTIONS[name](x, params)
    return x


def color(x, params):
    dtype = x.dtype
    b, s, c = (ops.cast(params[k], dtype) for k in ("brightness", "saturation", "contrast"))
    x = x + b
    mean = ops.mean(x, axis=-1, keepdims=True)
    x = (x - mean) * s + mean
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) * c + mean


def shift_matrix(shift, size, dtype):
    """(n, size, size) one-hot rows: M[b, i, k] = 1 iff k = i + shift[b] is inside the image."""
    rows = ops.arange(size, dtype="int32")[None, :, None]
    cols = ops.arange(size, dtype="int32")[None, None, :]
    target = rows + ops.cast(shift, "int32")[:, None, None]
    return ops.cast(ops.equal(cols, target), dtype)


def translation(x, params):
    """out[b, i, j] = x[b, i + shift_h[b], j + shift_w[b]], zero outside the image."""
    h, w = x.shape[1], x.shape[2]
    rows = shift_matrix(params["shift_h"], h, x.dtype)
    cols = shift_matrix(params["shift_w"], w, x.dtype)
    x = ops.einsum("bik,bkwc->biwc", rows, x)
    return ops.einsum("bjl,bilc->bijc", cols, x)


def cutout_mask(params, h, w, dtype):
    """(n, h, w, 1): 0 inside each image's square, 1 elsewhere."""
    ch, cw = _shifts(h, CUTOUT_RATIO), _shifts(w, CUTOUT_RATIO)
    top = ops.cast(params["cutout_h"], "int32")[:, None] - ch // 2
    left = ops.cast(params["cutout_w"], "int32")[:, None] - cw // 2
    r = ops.arange(h, dtype="int32")[None, :]
    c = ops.arange(w, dtype="int32")[None, :]
    in_rows = ops.cast((r >= top) & (r < top + ch), dtype)
    in_cols = ops.cast((c >= left) & (c < left + cw), dtype)
    return (1.0 - in_rows[:, :, None] * in_cols[:, None, :])[..., None]


def cutout(x, params):
    return x * cutout_mask(params, x.shape[1], x.shape[2], x.dtype)


def flip(x, params):
    """Each image mirrored left-right where its draw is 1."""
    chosen = ops.reshape(ops.cast(params["flip"], x.dtype), (-1, 1, 1, 1))
    return chosen * ops.flip(x, axis=2) + (1 - chosen) * x


_FUNCTIONS = {"color": color, "translation": translation, "cutout": cutout, "flip": flip}


def concat_params(*parts):
    """One params dict for images concatenated along the batch."""
    return {k: ops.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}
