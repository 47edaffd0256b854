"""One optimizer per player, seen by Keras as a single optimizer.

Keras's trainers know one `model.optimizer`. On JAX its jitted state carries
exactly `model.optimizer.variables`, so a model with several players needs an
optimizer whose `variables` are all the players' optimizers' variables. That is
`PlayerOptimizers`; it never applies a gradient itself: each player's update
goes through `zoo.core.backend.player_update` with that player's optimizer.
Its own `iterations` counts train steps, so TensorBoard and learning-rate logs
see one step per batch whatever the number of player updates in it.
"""

import keras


class PlayerOptimizers(keras.optimizers.Optimizer):
    def __init__(self, optimizers, player_variables, name="player_optimizers"):
        """
        Args:
            optimizers: dict player name -> `keras.optimizers.Optimizer`.
            player_variables: callable, player name -> list of the trainable
                variables that player updates.
        """
        super().__init__(learning_rate=0.0, name=name)
        self._player_names = list(optimizers)
        self.players = dict(optimizers)
        self._player_variables = player_variables

    def __getitem__(self, player):
        return self.players[player]

    def build(self, var_list=None):
        # var_list (all trainable variables of the model) is ignored: each
        # player's optimizer is built on that player's variables only.
        for name in self._player_names:
            opt = self.players[name]
            if not opt.built:
                opt.build(list(self._player_variables(name)))
        self.built = True

    @property
    def variables(self):
        # Keras's Optimizer.variables: this optimizer's own (its step counter).
        own = list(super().variables)
        for name in self._player_names:
            own.extend(self.players[name].variables)
        return own

    # Each player's optimizer saves itself as a child object; this one saves
    # only its own step counter, so no variable is stored twice.
    def save_own_variables(self, store):
        for i, variable in enumerate(super().variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        for i, variable in enumerate(super().variables):
            if str(i) in store:
                variable.assign(store[str(i)])

    def get_config(self):
        raise NotImplementedError(
            "PlayerOptimizers is rebuilt by the model's compile config; "
            "serialize the players' optimizers instead."
        )
