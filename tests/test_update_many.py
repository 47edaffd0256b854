"""`update_many`: several players' steps from one forward pass (#22.2)."""

import keras
import numpy as np
import pytest
from keras import ops

from zoo.core import AdversarialModel
from zoo.models import VAEGAN

from tests.conftest import weights_of


class TwoLinear(AdversarialModel):
    """Players a and b, each one weight vector; each loss reads both players."""

    players = {"a": ("net_a",), "b": ("net_b",)}

    def __init__(self, joint=True, **kwargs):
        super().__init__(**kwargs)
        self.net_a = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)], name="net_a")
        self.net_b = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)], name="net_b")
        self.net_a.set_weights([np.array([[1.0], [2.0], [-1.0]], "float32")])
        self.net_b.set_weights([np.array([[0.5], [-1.0], [3.0]], "float32")])
        self.joint = joint
        self.data_shape, self.data_range = (3,), None
        self.init_logs(["a_loss", "b_loss"])
        self.built = True

    def losses(self, x):
        pa, pb = self.net_a(x), self.net_b(x)
        # L_a = mean (pa * pb - 1)^2, L_b = mean (pa + pb)^2: each reads the other player.
        return {"a": ops.mean(ops.square(pa * pb - 1.0)), "b": ops.mean(ops.square(pa + pb))}, ()

    def train_step(self, data):
        x, _ = self._unpack(data)
        if self.joint:
            losses, _ = self.update_many(("a", "b"), lambda: self.losses(x))
            return self.track(a_loss=losses["a"], b_loss=losses["b"])
        la, _ = self.update("a", lambda: (self.losses(x)[0]["a"], ()))
        lb, _ = self.update("b", lambda: (self.losses(x)[0]["b"], ()))  # reads a's new weights
        return self.track(a_loss=la, b_loss=lb)


X = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 1.0], [2.0, 1.0, 0.0], [0.0, 1.0, 1.0]], "float32")
LR = 0.1


def expected_joint_step():
    """Both gradients at the starting weights (NumPy), then both applied: plain SGD."""
    wa, wb = np.array([1.0, 2.0, -1.0]), np.array([0.5, -1.0, 3.0])
    pa, pb = X @ wa, X @ wb
    ga = (2 * (pa * pb - 1) * pb) @ X / len(X)
    gb = (2 * (pa + pb)) @ X / len(X)
    return wa - LR * ga, wb - LR * gb


def trained(joint):
    m = TwoLinear(joint=joint)
    m.compile(a_optimizer=keras.optimizers.SGD(LR), b_optimizer=keras.optimizers.SGD(LR))
    m.train_on_batch(X)
    return weights_of(m.net_a)[0].ravel(), weights_of(m.net_b)[0].ravel()


def test_each_player_steps_on_its_own_loss_at_the_same_state():
    wa, wb = trained(joint=True)
    want_a, want_b = expected_joint_step()
    # float32 forward and backward of a 4x3 problem: errors near 1e-6; 1e-5 is tight
    # against the sequential step's difference below (above 1e-2).
    np.testing.assert_allclose(wa, want_a, atol=1e-5)
    np.testing.assert_allclose(wb, want_b, atol=1e-5)
    # Negative control: in sequence, b's gradient reads a's new weights.
    _, wb_seq = trained(joint=False)
    assert np.abs(wb_seq - want_b).max() > 1e-2


def test_unknown_or_missing_losses_are_refused():
    m = TwoLinear()
    m.compile()
    m.losses = lambda x: ({"a": ops.mean(m.net_a(x))}, ())  # no loss for b
    with pytest.raises(KeyError, match="players updated are"):
        m.train_on_batch(X)


def vaegan(one_forward):
    keras.utils.set_random_seed(3)
    m = VAEGAN.larsen((16, 16, 1), latent_dim=4, width=0.125, seed=3, one_forward=one_forward,
                      equilibrium=(0.68, 0.35))
    m.compile(enc_optimizer=keras.optimizers.SGD(0.05), dec_optimizer=keras.optimizers.SGD(0.05),
              dis_optimizer=keras.optimizers.SGD(0.05))
    return m


def test_vaegan_one_forward_takes_the_three_passes_gradients():
    # The players' gradients do not depend on each other's updates (the module's
    # text), so one pass gives the three passes' step; batch-norm moving statistics
    # move once instead of three times and are not compared.
    x = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    one, three = vaegan(True), vaegan(False)
    before = [keras.ops.convert_to_numpy(v) for v in one.trainable_variables]
    logs_one, logs_three = one.train_on_batch(x, return_dict=True), three.train_on_batch(x, return_dict=True)
    moved = 0.0
    for a, b, w0 in zip(one.trainable_variables, three.trainable_variables, before):
        a, b = keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        # float32 on nets of a few hundred units: 1e-5 against steps of 1e-3 and more
        np.testing.assert_allclose(a, b, atol=1e-5, err_msg=a.shape)
        moved = max(moved, float(np.abs(a - w0).max()))
    assert moved > 1e-3  # the step did something (the gates let both players move)
    for k in ("enc_loss", "dec_loss", "dis_loss", "gan"):
        np.testing.assert_allclose(logs_one[k], logs_three[k], rtol=1e-5, atol=1e-6)
