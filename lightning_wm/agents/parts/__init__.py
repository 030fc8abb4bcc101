"""The parts a Dreamer agent is composed of (after danijar/dreamerv3's agent: a world model, a
behaviour and loss scales, each owning its loss terms).

- :mod:`.world_model`: encoder, RSSM, decoder, reward and discount heads; the world-model loss;
- :mod:`.behaviour`: the behaviour protocol and Dreamer V1's actor-critic;
- :mod:`.slow_critic`: DreamerV2's actor-critic (reinforce or dynamics actor, slow critic);
- :mod:`.recipe`: a Dreamer version as data (option tables, which parts);
- :mod:`.optimise`: the one way an update steps an optimiser group.

Parts hold references to the agent's ``components`` (looked up by name on every call) and own no
parameters the agent does not register: the agent's modules stay the one registry (the one module
a part creates, DreamerV2's slow critic, is registered as ``target_value``), so transfer and
checkpoints see the same state-dict keys as before the parts existed.
"""
from lightning_wm.agents.parts.behaviour import Behaviour, DynamicsActorCritic
from lightning_wm.agents.parts.optimise import compiled, frozen, plain_backward, step_group
from lightning_wm.agents.parts.recipe import Recipe, reward_model
from lightning_wm.agents.parts.slow_critic import Imagined, SlowCriticActorCritic
from lightning_wm.agents.parts.world_model import WorldModel, WorldModelOptions

__all__ = ["Behaviour", "DynamicsActorCritic", "Imagined", "Recipe", "SlowCriticActorCritic",
           "WorldModel", "WorldModelOptions", "compiled", "frozen", "plain_backward",
           "reward_model", "step_group"]
