"""Building blocks shared by the zoo's models: networks sized by image shape.

Every builder returns a functional `keras.Model`. Conditional networks take a
label vector `y` of width `num_classes` (one-hot, multi-hot, or all-zero for an
unlabelled image) as a second input, so the same networks serve class-
conditional GANs and DSH-GAN's multi-label generator.
"""

import random

import keras
from keras import layers, ops


def seeded_dropout(rate):
    """`layers.Dropout` with its own seed, drawn from Python's RNG (seeded by
    `keras.utils.set_random_seed`). Unseeded, Keras's PyTorch dropout draws from
    torch's global generator, which no checkpoint saves: a resumed run would
    then drop other units than the uninterrupted one."""
    return layers.Dropout(rate, seed=random.randint(1, 10**9))


@keras.saving.register_keras_serializable(package="zoo")
class Maxout(layers.Layer):
    """Maxout units (Goodfellow et al. 2013): the max over `pieces` linear maps."""

    def __init__(self, units, pieces, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.pieces = pieces
        self.linear = layers.Dense(units * pieces)

    def build(self, input_shape):
        self.linear.build(input_shape)

    def call(self, x):
        h = self.linear(x)
        h = ops.reshape(h, (-1, self.units, self.pieces))
        return ops.max(h, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "pieces": self.pieces}


@keras.saving.register_keras_serializable(package="zoo")
class SpectralNorm(layers.Wrapper):
    """Spectral normalisation (Miyato et al., "Spectral Normalization for
    Generative Adversarial Networks", ICLR 2018) of a Dense or Conv layer: the
    layer computes with W / sigma(W), sigma the largest singular value of the
    kernel reshaped to (fan_in, units), estimated by power iteration.

    As in the paper (Algorithm 1) and PyTorch's `spectral_norm`, the vector u
    (a non-trainable weight, so saved and restored with the model) takes
    `power_iterations` steps in every training call and keeps them, u and v are
    held constant in the gradient, and the gradient reaches W through sigma(W):
    W is reparameterised, not rewritten. An inference call runs the same
    iteration from the stored u without keeping it, so eval-mode and
    train-mode outputs agree.

    Why not `keras.layers.SpectralNormalization`: in training calls it assigns
    W / sigma into the trainable kernel itself (a projection of the weights, with
    no gradient through sigma on TensorFlow and PyTorch). In the zoo's JAX step,
    which takes a player's gradient over its own weights' values, such an
    assignment is kept when another player reads D and dropped in D's own
    update, so the three backends would train different models.
    """

    def __init__(self, layer, power_iterations=1, eps=1e-12, **kwargs):
        super().__init__(layer, **kwargs)
        if int(power_iterations) != power_iterations or power_iterations < 1:
            raise ValueError(f"power_iterations must be a positive integer; got {power_iterations!r}.")
        if not isinstance(layer, (layers.Dense, layers.Conv1D, layers.Conv2D, layers.Conv3D)) or isinstance(
            layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)
        ):
            raise TypeError(f"SpectralNorm wraps Dense and Conv layers; got {type(layer).__name__}.")
        self.power_iterations = int(power_iterations)
        self.eps = float(eps)

    def build(self, input_shape):
        super().build(input_shape)
        units = self.layer.kernel.shape[-1]
        self.u = self.add_weight(
            shape=(units,), initializer=keras.initializers.RandomNormal(0.0, 1.0),
            trainable=False, autocast=False, name="u",
        )
        self.built = True

    def _power_iteration(self):
        """(u, sigma): u after the iterations, sigma = v . W u, gradient through W only."""
        w = ops.cast(self.layer.kernel.value, "float32")
        w = ops.reshape(w, (-1, w.shape[-1]))  # (fan_in, units)
        u = ops.cast(self.u.value, "float32")
        for _ in range(self.power_iterations):
            v = _l2_normalize(ops.matmul(w, u), self.eps)  # (fan_in,)
            u = _l2_normalize(ops.matmul(ops.transpose(w), v), self.eps)  # (units,)
        u, v = ops.stop_gradient(u), ops.stop_gradient(v)
        return u, ops.sum(v * ops.matmul(w, u))

    def normalized_kernel(self, training=False):
        """W / sigma(W) (and, when `training`, the power iteration's u kept)."""
        u, sigma = self._power_iteration()
        if training:
            self.u.assign(u)
        kernel = self.layer.kernel.value
        return ops.cast(ops.cast(kernel, "float32") / sigma, kernel.dtype)

    def call(self, inputs, training=False):
        kernel = self.normalized_kernel(training=bool(training))
        layer = self.layer
        if isinstance(layer, layers.Dense):
            out = ops.matmul(inputs, kernel)
            if layer.use_bias:
                out = out + layer.bias
        else:
            out = layer.convolution_op(inputs, kernel)
            if layer.use_bias:
                if layer.data_format == "channels_last":
                    shape = (1,) * (layer.rank + 1) + (layer.filters,)
                else:
                    shape = (1, layer.filters) + (1,) * layer.rank
                out = out + ops.reshape(layer.bias, shape)
        return layer.activation(out) if layer.activation is not None else out

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations, "eps": self.eps}


def _l2_normalize(v, eps):
    return v / ops.maximum(ops.sqrt(ops.sum(ops.square(v))), eps)


def _sn(layer, spectral_norm):
    """`layer`, spectrally normalised if asked."""
    return SpectralNorm(layer) if spectral_norm else layer


def check_image_shape(image_shape):
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(
            f"image_shape must be (height, width, channels); got {image_shape}."
        )
    return image_shape


def upsampling_plan(image_shape, max_doublings=4):
    """(start_height, start_width, doublings) for a conv stack sized by image shape.

    Halve the spatial size while both sides stay even and at least 4 after
    halving: 28x28 -> 7x7 in 2 steps, 32x32 -> 4x4 in 3, 64x64 -> 4x4 in 4.
    """
    h, w, _ = check_image_shape(image_shape)
    n = 0
    while n < max_doublings and h % 2 == 0 and w % 2 == 0 and h >= 8 and w >= 8:
        h, w, n = h // 2, w // 2, n + 1
    if n == 0:
        raise ValueError(
            f"image_shape {image_shape} is too small or odd-sized for a conv "
            "stack: height and width must be divisible by 2 and at least 8."
        )
    return h, w, n


def _inputs(shape, num_classes, name):
    x = keras.Input(shape, name=name)
    if not num_classes:
        return x, None, x
    y = keras.Input((num_classes,), name="y")
    return x, y, [x, y]


def _concat_label(h, y, embed_dim):
    if y is None:
        return h
    # A linear label embedding: works for one-hot, multi-hot and all-zero y.
    e = layers.Dense(embed_dim, use_bias=False, name="label_embedding")(y)
    return layers.Concatenate()([h, e])


def _projection_logit(features, y, spectral_norm=False):
    """D's logit: linear in features, plus <embed(y), features> if conditional.

    The projection discriminator (Miyato & Koyama 2018) conditions D on y with
    one inner product; it also takes multi-hot labels. With `spectral_norm`,
    both linear maps are normalised (as in Miyato & Koyama's SN-projection D).
    """
    if spectral_norm:
        logit = SpectralNorm(layers.Dense(1), name="logit")(features)
    else:
        logit = layers.Dense(1, name="logit")(features)
    if y is None:
        return logit
    if spectral_norm:
        e = SpectralNorm(layers.Dense(features.shape[-1], use_bias=False), name="label_projection")(y)
    else:
        e = layers.Dense(features.shape[-1], use_bias=False, name="label_projection")(y)
    return layers.Add()([logit, layers.Dot(axes=1)([e, features])])


# ---------------------------------------------------------------------------
# Goodfellow et al. 2014: MLP generator, maxout discriminator with dropout
# ---------------------------------------------------------------------------
def mlp_generator(
    image_shape, latent_dim=100, hidden=(1200, 1200), num_classes=None,
    output_activation="sigmoid", name="generator",
):
    image_shape = check_image_shape(image_shape)
    z, y, inputs = _inputs((latent_dim,), num_classes, "z")
    h = _concat_label(z, y, min(latent_dim, 64))
    for units in hidden:
        h = layers.Dense(units, activation="relu")(h)
    dim = image_shape[0] * image_shape[1] * image_shape[2]
    h = layers.Dense(dim, activation=output_activation)(h)
    x = layers.Reshape(image_shape)(h)
    return keras.Model(inputs, x, name=name)


def maxout_discriminator(
    image_shape, units=(240, 240), pieces=5, dropout=(0.2, 0.5, 0.5),
    num_classes=None, name="discriminator",
):
    """The paper's MNIST discriminator; dropout rates are pylearn2's 1 - include_prob."""
    image_shape = check_image_shape(image_shape)
    x, y, inputs = _inputs(image_shape, num_classes, "x")
    h = layers.Flatten()(x)
    for i, u in enumerate(units):
        h = seeded_dropout(dropout[i])(h)
        h = Maxout(u, pieces)(h)
    h = seeded_dropout(dropout[len(units)])(h)
    return keras.Model(inputs, _projection_logit(h, y), name=name)


# ---------------------------------------------------------------------------
# DCGAN (Radford et al. 2016), sized by image shape
# ---------------------------------------------------------------------------
def dcgan_generator(
    image_shape, latent_dim=100, width=64, num_classes=None, name="generator"
):
    """Dense -> (h/2^n, w/2^n, width*2^(n-1)) -> n stride-2 transposed convs -> tanh."""
    image_shape = check_image_shape(image_shape)
    h0, w0, n = upsampling_plan(image_shape)
    z, y, inputs = _inputs((latent_dim,), num_classes, "z")
    h = _concat_label(z, y, min(latent_dim, 64))
    filters = width * 2 ** (n - 1)
    h = layers.Dense(h0 * w0 * filters, use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.Reshape((h0, w0, filters))(h)
    for i in range(n - 1):
        filters //= 2
        h = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
    h = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same")(h)
    x = layers.Activation("tanh", name="image")(h)
    return keras.Model(inputs, x, name=name)


def dcgan_discriminator(
    image_shape, width=64, num_classes=None, dropout=0.0, spectral_norm=False, name="discriminator"
):
    """n stride-2 convs with LeakyReLU(0.2) -> logit. No batch norm: D sees real
    and fake in one batch, and eval-mode D(x) equals train-mode D(x).
    `spectral_norm`: every conv and linear layer spectrally normalised
    (`SpectralNorm`, Miyato et al. 2018)."""
    image_shape = check_image_shape(image_shape)
    _, _, n = upsampling_plan(image_shape)
    x, y, inputs = _inputs(image_shape, num_classes, "x")
    h = x
    for i in range(n):
        h = _sn(layers.Conv2D(width * 2**i, 4, strides=2, padding="same"), spectral_norm)(h)
        h = layers.LeakyReLU(0.2)(h)
    h = layers.Flatten()(h)
    if dropout:
        h = seeded_dropout(dropout)(h)
    return keras.Model(inputs, _projection_logit(h, y, spectral_norm), name=name)


# ---------------------------------------------------------------------------
# Small MLPs for low-dimensional data (toy problems, theory tests)
# ---------------------------------------------------------------------------
def mlp(input_dim, output_dim, hidden=(128, 128), activation="relu",
        output_activation=None, num_classes=None, name="mlp"):
    v, y, inputs = _inputs((input_dim,), num_classes, "input")
    h = _concat_label(v, y, 16)
    for u in hidden:
        h = layers.Dense(u, activation=activation)(h)
    out = layers.Dense(output_dim, activation=output_activation)(h)
    return keras.Model(inputs, out, name=name)


# ---------------------------------------------------------------------------
# Larsen et al. 2016 (VAE-GAN), the authors' 64x64 nets scaled by image shape
# ---------------------------------------------------------------------------
def _larsen_widths(n, widths):
    """The authors' widths for their 3 stride-2 layers, fitted to n layers:
    the last n of them (28x28 -> n=2), or the first repeated (n=4)."""
    widths = list(widths)
    while len(widths) < n:
        widths.insert(0, widths[0])
    return widths[-n:]


def _scaled(widths, width):
    return [max(1, int(round(w * width))) for w in widths]


def gaussian_encoder(image_shape, latent_dim=128, width=1.0, name="encoder"):
    """x -> [mu, log_var]: stride-2 5x5 convs (64, 128, 256) + BN + ReLU, fc 1024."""
    image_shape = check_image_shape(image_shape)
    _, _, n = upsampling_plan(image_shape)
    x = keras.Input(image_shape, name="x")
    h = x
    for f in _scaled(_larsen_widths(n, (64, 128, 256)), width):
        h = layers.Conv2D(f, 5, strides=2, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
    h = layers.Flatten()(h)
    h = layers.Dense(_scaled([1024], width)[0], use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    mu = layers.Dense(latent_dim, name="mu")(h)
    log_var = layers.Dense(latent_dim, name="log_var")(h)
    return keras.Model(x, [mu, log_var], name=name)


def larsen_decoder(image_shape, latent_dim=128, output="tanh", width=1.0, name="decoder"):
    """z -> x: fc to (h/2^n, w/2^n, 256), stride-2 5x5 transposed convs (256, 128, 32)
    + BN + ReLU, then a 5x5 conv to the image channels. `output`: "tanh" (pixels
    in [-1, 1]) or "logits" (Bernoulli pixels)."""
    image_shape = check_image_shape(image_shape)
    h0, w0, n = upsampling_plan(image_shape)
    z = keras.Input((latent_dim,), name="z")
    top = _scaled([256], width)[0]
    h = layers.Dense(h0 * w0 * top, use_bias=False)(z)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    h = layers.Reshape((h0, w0, top))(h)
    for f in _scaled(_larsen_widths(n, (256, 128, 32)), width):
        h = layers.Conv2DTranspose(f, 5, strides=2, padding="same", use_bias=False)(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
    h = layers.Conv2D(image_shape[-1], 5, padding="same")(h)
    if output == "tanh":
        h = layers.Activation("tanh", name="image")(h)
    elif output != "logits":
        raise ValueError(f'output must be "tanh" or "logits"; got {output!r}.')
    return keras.Model(z, h, name=name)


def larsen_discriminator(image_shape, width=1.0, spectral_norm=False, name="discriminator"):
    """x -> [logit, Dis_l(x)]: conv 32 + ReLU, stride-2 5x5 convs (128, 256, 256)
    + BN + ReLU, fc 512 + BN + ReLU, logit. Dis_l is the last conv's output
    before its batch norm (the authors' 4th conv layer). `spectral_norm`: every
    conv and linear layer spectrally normalised (`SpectralNorm`); the batch norms
    stay, as in the authors' net."""
    image_shape = check_image_shape(image_shape)
    _, _, n = upsampling_plan(image_shape)
    x = keras.Input(image_shape, name="x")
    h = layers.ReLU()(_sn(layers.Conv2D(_scaled([32], width)[0], 5, padding="same"), spectral_norm)(x))
    widths = _scaled(_larsen_widths(n, (128, 256, 256)), width)
    for i, f in enumerate(widths):
        last = "dis_l" if i == len(widths) - 1 else None
        if spectral_norm:
            h = SpectralNorm(layers.Conv2D(f, 5, strides=2, padding="same", use_bias=False), name=last)(h)
        else:
            h = layers.Conv2D(f, 5, strides=2, padding="same", use_bias=False, name=last)(h)
        if i == len(widths) - 1:
            features = layers.Flatten(name="dis_l_features")(h)
        h = layers.BatchNormalization()(h)
        h = layers.ReLU()(h)
    h = layers.Flatten()(h)
    h = _sn(layers.Dense(_scaled([512], width)[0], use_bias=False), spectral_norm)(h)
    h = layers.BatchNormalization()(h)
    h = layers.ReLU()(h)
    if spectral_norm:
        logit = SpectralNorm(layers.Dense(1), name="logit")(h)
    else:
        logit = layers.Dense(1, name="logit")(h)
    return keras.Model(x, [logit, features], name=name)


# ---------------------------------------------------------------------------
# Mescheder et al. 2017 (AVB): a black-box encoder and the adversary T(x, z)
# ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="zoo")
class HalfSquaredNorm(layers.Layer):
    """1/2 ||z||^2 per example: the log-density of N(0, I) up to sign and constant."""

    def call(self, z):
        return 0.5 * ops.sum(ops.square(z), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


def _data_features(x, hidden, name, activation="relu"):
    """Features of x: a stride-2 conv stack for images, an MLP for vectors."""
    h = x
    if len(x.shape) == 4:
        _, _, n = upsampling_plan(tuple(x.shape[1:]))
        for i in range(n):
            h = layers.Conv2D(32 * 2**i, 4, strides=2, padding="same", activation=activation,
                              name=f"{name}_conv{i}")(h)
        h = layers.Flatten()(h)
    for i, u in enumerate(hidden):
        h = layers.Dense(u, activation=activation, name=f"{name}_dense{i}")(h)
    return h


def avb_encoder(data_shape, latent_dim=32, noise_dim=None, hidden=(256, 256), name="encoder"):
    """The black-box encoder z = z_phi(x, eps): features of x concatenated with the
    noise eps ~ N(0, I), through an MLP. No density is needed, none is given."""
    noise_dim = noise_dim or latent_dim
    x = keras.Input(tuple(data_shape), name="x")
    eps = keras.Input((noise_dim,), name="eps")
    h = _data_features(x, hidden[:1], "x")
    h = layers.Concatenate()([h, eps])
    for u in hidden[1:]:
        h = layers.Dense(u, activation="relu")(h)
    z = layers.Dense(latent_dim, name="z")(h)
    return keras.Model([x, eps], z, name=name)


@keras.saving.register_keras_serializable(package="zoo")
class NoiseBasis(layers.Layer):
    """The m noise networks v_i(eps_i) of the authors' AVB encoder, i = 1..m: MLPs
    of the noise alone (ELU), all m evaluated together by one einsum per layer.
    eps: (batch, m * noise_dim) -> v: (batch, m, latent_dim)."""

    def __init__(self, num_basis, noise_dim, latent_dim, hidden=(128, 128, 128), **kwargs):
        super().__init__(**kwargs)
        self.num_basis, self.noise_dim, self.latent_dim = int(num_basis), int(noise_dim), int(latent_dim)
        self.hidden = tuple(int(u) for u in hidden)

    def build(self, input_shape):
        widths = (self.noise_dim, *self.hidden, self.latent_dim)
        self.kernels, self.biases = [], []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            # Glorot per network: Keras would count a 3-d kernel's first axis into the fans.
            limit = (6.0 / (a + b)) ** 0.5
            self.kernels.append(self.add_weight(shape=(self.num_basis, a, b), name=f"kernel{i}",
                                                initializer=keras.initializers.RandomUniform(-limit, limit)))
            self.biases.append(self.add_weight(shape=(self.num_basis, b), initializer="zeros", name=f"bias{i}"))

    def call(self, eps):
        h = ops.reshape(eps, (-1, self.num_basis, self.noise_dim))
        for i, (w, b) in enumerate(zip(self.kernels, self.biases)):
            h = ops.einsum("bmi,mio->bmo", h, w) + b
            if i < len(self.kernels) - 1:
                h = ops.elu(h)
        return h

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_basis, self.latent_dim)

    def get_config(self):
        return {**super().get_config(), "num_basis": self.num_basis, "noise_dim": self.noise_dim,
                "latent_dim": self.latent_dim, "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="zoo")
class BasisMoments(layers.Layer):
    """z = z0(x) + sum_i a_i(x) * v_i(eps_i) and its moments given x:
    E[z|x] = z0 + sum_i a_i E[v_i], Var[z|x] = sum_i a_i^2 Var[v_i]. The v_i
    depend on the noise only, so their moments are estimated over the batch's
    noise draws (Mescheder et al. 2017, Sec. 6: how adaptive contrast gets the
    moments of q from one sample per x). a_i = elu(pre_i - 5) + 1 > 0."""

    def call(self, inputs):
        z0, pre_a, v = inputs  # (b, d), (b, m * d), (b, m, d)
        a = ops.reshape(ops.elu(pre_a - 5.0) + 1.0, ops.shape(v))
        mean_v = ops.mean(v, axis=0)
        var_v = ops.mean(ops.square(v - mean_v), axis=0)
        z = z0 + ops.sum(a * v, axis=1)
        return [z, z0 + ops.sum(a * mean_v, axis=1), ops.sum(ops.square(a) * var_v, axis=1)]

    def compute_output_shape(self, input_shapes):
        return [input_shapes[0]] * 3


def avb_basis_encoder(data_shape, latent_dim=32, noise_dim=None, num_basis=32, hidden=(256, 256),
                      noise_hidden=(128, 128, 128), name="encoder"):
    """The authors' encoder for adaptive contrast: [x, eps] -> [z, E[z|x], Var[z|x]],

        z = z0(x) + sum_i a_i(x) * v_i(eps_i),   a_i = elu(. - 5) + 1 > 0,

    still a black box in that q(z|x) has no density (the v_i are learnt
    non-Gaussian), but its mean and variance are at hand, so adaptive contrast
    needs one z per x instead of several. eps has num_basis * noise_dim units.
    The a_i start near e^-5 and z0 near 0, so q starts narrow around 0."""
    noise_dim = noise_dim or latent_dim
    x = keras.Input(tuple(data_shape), name="x")
    eps = keras.Input((num_basis * noise_dim,), name="eps")
    h = _data_features(x, hidden, "x")
    z0 = layers.Dense(latent_dim, kernel_initializer=keras.initializers.TruncatedNormal(stddev=1e-5), name="z0")(h)
    a = layers.Dense(num_basis * latent_dim, name="a")(h)
    v = NoiseBasis(num_basis, noise_dim, latent_dim, noise_hidden, name="v")(eps)
    z, mean, var = BasisMoments(name="moments")([z0, a, v])
    return keras.Model([x, eps], [z, mean, var], name=name)


def avb_decoder(data_shape, latent_dim=32, hidden=(256, 256), output="logits", name="decoder"):
    """z -> p(x|z): Bernoulli logits (or tanh means); transposed convs for images."""
    data_shape = tuple(data_shape)
    z = keras.Input((latent_dim,), name="z")
    h = z
    for u in hidden:
        h = layers.Dense(u, activation="relu")(h)
    if len(data_shape) == 3:
        h0, w0, n = upsampling_plan(data_shape)
        h = layers.Dense(h0 * w0 * 32 * 2 ** (n - 1), activation="relu")(h)
        h = layers.Reshape((h0, w0, 32 * 2 ** (n - 1)))(h)
        for i in range(n - 1):
            h = layers.Conv2DTranspose(32 * 2 ** (n - 2 - i), 4, strides=2, padding="same", activation="relu")(h)
        h = layers.Conv2DTranspose(data_shape[-1], 4, strides=2, padding="same")(h)
    else:
        h = layers.Dense(int(np_prod(data_shape)))(h)
        h = layers.Reshape(data_shape)(h)
    if output == "tanh":
        h = layers.Activation("tanh")(h)
    elif output != "logits":
        raise ValueError(f'output must be "logits" or "tanh"; got {output!r}.')
    return keras.Model(z, h, name=name)


def avb_adversary(data_shape, latent_dim=32, hidden=(256, 256), inner_dim=64, activation="elu",
                  name="adversary"):
    """The authors' adversary T(x, z) = theta(x) . s(z) + T_x(x) + T_z(z) + 1/2 ||z||^2.

    The 1/2 ||z||^2 term is -log p(z) up to a constant, so the networks only
    learn log q(z|x) plus the rest of the quadratic. ELU units: with ReLUs, 30
    minutes of AVB on MNIST left 298 of theta(x)'s 300 last-layer units dead and
    T blind to x (bench/avb_refit_t.py); on the toy test ELU also fits log q/p
    closer than softplus or leaky ReLU. Where log q/p has sharp edges (the paper's
    four-point problem, bench/avb_toy.py) pass activation="relu": with ELU, plain
    AVB's q collapsed onto curves there."""
    x = keras.Input(tuple(data_shape), name="x")
    z = keras.Input((latent_dim,), name="z")
    hx = _data_features(x, hidden, "theta", activation)
    hz = z
    for i, u in enumerate(hidden):
        hz = layers.Dense(u, activation=activation, name=f"s_dense{i}")(hz)
    theta = layers.Dense(inner_dim, name="theta")(hx)
    s = layers.Dense(inner_dim, name="s")(hz)
    t = layers.Add(name="T")([
        layers.Dot(axes=1)([theta, s]),
        layers.Dense(1, name="T_x")(hx),
        layers.Dense(1, name="T_z")(hz),
        HalfSquaredNorm()(z),
    ])
    return keras.Model([x, z], t, name=name)


def np_prod(shape):
    out = 1
    for d in shape:
        out *= int(d)
    return out


# ---------------------------------------------------------------------------
# Qiu et al. 2017 (DSH-GAN): the pre-training discriminator and the hashing net
# ---------------------------------------------------------------------------
def semi_supervised_discriminator(image_shape, num_classes, width=64, spectral_norm=False,
                                  name="discriminator"):
    """x -> [real/synthetic logit, label logits]: the DCGAN conv stack with two
    heads. The label head has one sigmoid unit per class, so the all-zero vector
    of an unlabelled image is a valid target. `spectral_norm`: the convs and
    both heads spectrally normalised (`SpectralNorm`)."""
    image_shape = check_image_shape(image_shape)
    _, _, n = upsampling_plan(image_shape)
    x = keras.Input(image_shape, name="x")
    h = x
    for i in range(n):
        h = _sn(layers.Conv2D(width * 2**i, 4, strides=2, padding="same"), spectral_norm)(h)
        h = layers.LeakyReLU(0.2)(h)
    h = layers.Flatten()(h)
    if spectral_norm:
        adv = SpectralNorm(layers.Dense(1), name="adversary")(h)
        labels = SpectralNorm(layers.Dense(num_classes), name="label_logits")(h)
    else:
        adv = layers.Dense(1, name="adversary")(h)
        labels = layers.Dense(num_classes, name="label_logits")(h)
    return keras.Model(x, [adv, labels], name=name)


def _hashing_streams(x, features, code_length, num_classes, fc, dropout, name):
    """The three streams on a shared CNN's features: hash (sigmoid codes), classes, adversary."""
    shared = layers.Dense(fc, activation="relu", name="representation")(features)
    shared = seeded_dropout(dropout)(shared)
    codes = layers.Dense(code_length, activation="sigmoid", name="hash")(shared)
    classes = layers.Dense(num_classes, name="class_logits")(shared)
    adversary = layers.Dense(1, name="adversary")(shared)
    return keras.Model(x, [codes, classes, adversary], name=name)


def hashing_network(image_shape, code_length, num_classes, width=32, fc=512, dropout=0.3,
                    name="hasher"):
    """The shared CNN and its three streams: x -> [h, class logits, adversary logit].

    Pairs of 3x3 convs per resolution (VGG-style) with group normalisation, which
    normalises per image: real and synthetic images share the batch in training,
    and a code must not depend on what else is in the batch. The hash stream
    ends in `code_length` sigmoid units h; the code is 1[h > 0.5].
    """
    image_shape = check_image_shape(image_shape)
    _, _, n = upsampling_plan(image_shape)
    x = keras.Input(image_shape, name="x")
    h = x
    for i in range(n):
        filters = width * 2**i
        for _ in range(2):
            h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
            h = layers.GroupNormalization(groups=min(8, filters))(h)
            h = layers.LeakyReLU(0.2)(h)
        h = layers.MaxPooling2D()(h)
    h = layers.Flatten()(h)
    h = seeded_dropout(dropout)(h)
    return _hashing_streams(x, h, code_length, num_classes, fc, dropout, name)


def resnet_hashing_network(image_shape, code_length, num_classes, width=32, fc=512, dropout=0.3,
                           norm="batch", name="hasher"):
    """A CIFAR-grade residual hashing network: x -> [h, class logits, adversary logit].

    The layout of the fast CIFAR-10 ResNets (Page's "ResNet-9", DAWNBench 2018)
    at `width` (64 there): a stem conv, then per stage a conv, a 2x2 max pool
    and, on the first and last stage, a residual pair of convs; widths
    w, 2w, 4w, 8w; a global max pool; the three streams of `hashing_network`.
    `norm`: "batch" (real images only: the real-triplet ablation) or "group"
    (per image: a batch mixing real and synthetic images, as DSH-GAN's).
    """
    image_shape = check_image_shape(image_shape)
    if norm not in ("batch", "group"):
        raise ValueError(f'norm must be "batch" or "group"; got {norm!r}.')

    def conv_block(h, filters):
        h = layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        if norm == "batch":
            h = layers.BatchNormalization()(h)
        else:
            h = layers.GroupNormalization(groups=min(8, filters))(h)
        return layers.ReLU()(h)

    x = keras.Input(image_shape, name="x")
    h = conv_block(x, width)
    for stage, filters in enumerate((2 * width, 4 * width, 8 * width)):
        h = layers.MaxPooling2D()(conv_block(h, filters))
        if stage != 1:
            h = layers.Add()([h, conv_block(conv_block(h, filters), filters)])
    h = layers.GlobalMaxPooling2D()(h)
    return _hashing_streams(x, h, code_length, num_classes, fc, dropout, name)


# The input each keras.applications family expects, from pixels in [0, 255]
# (keras.applications.imagenet_utils' modes; "none": the model scales itself).
APPLICATION_INPUTS = {
    "ResNet50": "caffe", "ResNet101": "caffe", "ResNet152": "caffe", "VGG16": "caffe", "VGG19": "caffe",
    "ResNet50V2": "tf", "ResNet101V2": "tf", "ResNet152V2": "tf", "MobileNet": "tf", "MobileNetV2": "tf",
    "Xception": "tf", "InceptionV3": "tf", "InceptionResNetV2": "tf",
    "DenseNet121": "torch", "DenseNet169": "torch", "DenseNet201": "torch",
    "MobileNetV3Small": "none", "MobileNetV3Large": "none", "ConvNeXtTiny": "none", "ConvNeXtSmall": "none",
    "EfficientNetB0": "none", "EfficientNetB1": "none", "EfficientNetB2": "none", "EfficientNetB3": "none",
    "EfficientNetV2B0": "none", "EfficientNetV2B1": "none", "EfficientNetV2S": "none",
}


@keras.saving.register_keras_serializable(package="zoo")
class ApplicationInput(layers.Layer):
    """Images in [-1, 1] (the zoo's) -> the input of a keras.applications network
    (`mode` as keras.applications.imagenet_utils.preprocess_input's, or "none": [0, 255])."""

    MEANS = {"caffe": (103.939, 116.779, 123.68), "torch": (0.485, 0.456, 0.406)}
    STDS = {"torch": (0.229, 0.224, 0.225)}

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf", "torch", "none"):
            raise ValueError(f'mode must be "caffe", "tf", "torch" or "none"; got {mode!r}.')
        self.mode = mode

    def call(self, x):
        if self.mode == "tf":
            return x  # the zoo's [-1, 1] is that mode's range
        pixels = (x + 1.0) * 127.5
        if self.mode == "none":
            return pixels
        if self.mode == "caffe":  # BGR, each channel less its ImageNet mean
            return ops.flip(pixels, axis=-1) - ops.convert_to_tensor(self.MEANS["caffe"], x.dtype)
        mean = ops.convert_to_tensor(self.MEANS["torch"], x.dtype)
        return (pixels / 255.0 - mean) / ops.convert_to_tensor(self.STDS["torch"], x.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def application_hashing_network(image_shape, code_length, num_classes, backbone="ResNet50", weights=None,
                                fc=512, dropout=0.3, backbone_kwargs=None, name="hasher"):
    """A keras.applications network as the shared CNN of the hashing network:
    x -> [h, class logits, adversary logit], as `hashing_network`.

    The route to the paper's setting, which fine-tuned an ImageNet network:
    `weights="imagenet"` downloads Keras's weights (where a download is
    possible), a file path loads them from disk (`keras.applications`' own
    argument), None initialises at random. `backbone_kwargs` go to the
    application (e.g. `alpha=` of the MobileNets). Batch norm in the backbone
    normalises over the batch: train such a hasher on real triplets
    (`synthetic_triplets=False`) or mind that real and synthetic images share batches.
    """
    image_shape = check_image_shape(image_shape)
    if backbone not in APPLICATION_INPUTS:
        raise ValueError(f"backbone must be one of {sorted(APPLICATION_INPUTS)}; got {backbone!r}.")
    if weights is not None and weights != "imagenet":
        from pathlib import Path

        if not Path(weights).is_file():
            raise FileNotFoundError(f"backbone weights {weights!r}: no such file (or pass 'imagenet' or None).")
        weights = str(weights)
    net = getattr(keras.applications, backbone)(
        include_top=False, weights=weights, input_shape=image_shape, pooling="avg", **(backbone_kwargs or {}))
    x = keras.Input(image_shape, name="x")
    h = net(ApplicationInput(APPLICATION_INPUTS[backbone])(x))
    return _hashing_streams(x, h, code_length, num_classes, fc, dropout, name)
