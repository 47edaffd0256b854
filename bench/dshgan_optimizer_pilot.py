"""The hashing recipe's optimizer pilot (#24): 600 steps of dshgan_cifar10_12bit's
model and data with AdamW (1e-3, weight decay 0.05) or SGD (Nesterov, 0.02), each
warmed up over 500 steps of a 10,000-step cosine schedule; read off the training
loss only (no retrieval figure, no validation or test image).

    KERAS_BACKEND=tensorflow python bench/dshgan_optimizer_pilot.py adamw   # or sgd

The log lines are in bench/results/dshgan_optimizer_pilot.txt.
"""
import sys
from pathlib import Path

import keras
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recipes import train as T  # noqa: E402
from recipes.evaluate import default_data  # noqa: E402
which = sys.argv[1]
r = T.RECIPES["dshgan_cifar10_12bit"]
keras.utils.set_random_seed(0)
ds, _ = T.make_data(r, default_data("cifar10"), 64, 0)
m = r.build(0)
steps = 10000
if which == "adamw":
    sch = keras.optimizers.schedules.CosineDecay(0.0, steps - 500, warmup_target=1e-3, warmup_steps=500)
    h = keras.optimizers.AdamW(sch, weight_decay=0.05)
elif which == "sgd":
    h = keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.0, steps - 500, warmup_target=0.02, warmup_steps=500), momentum=0.9, nesterov=True, weight_decay=5e-4)
m.compile(g_optimizer=T.adam(2e-4), d_optimizer=T.adam(2e-4), h_optimizer=h)
m.phase = "hash"
m.fit(ds, epochs=6, steps_per_epoch=100, verbose=2)
