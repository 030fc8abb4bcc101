"""Published random and human reference scores for the Atari games of the atari100k suite, and
the human-normalised score built on them.

Source: the no-op-starts table of Wang, Schaul, Hessel, van Hasselt, Lanctot and de Freitas,
"Dueling Network Architectures for Deep Reinforcement Learning" (ICML 2016), supplementary
material: *random* is a uniformly random policy and *human* a professional game tester, each
episode starting after up to 30 no-op actions and capped at 108,000 frames (30 minutes). These are
the reference points the Atari-100k papers normalise with: Ye, Liu, Kurutach, Abbeel and Gao,
"Mastering Atari Games with Limited Data" (NeurIPS 2021), Table 1, and Xu, Hansen, Wang, Chan, Su
and Tu, "On the Feasibility of Cross-Task Transfer with Model-Based Reinforcement Learning"
(XTRA, 2022), Table 2 (Assault 222.4 / 742.0, BattleZone 2360 / 37187.5, Hero 1027 / 30826.4,
Krull 1598 / 2665.5, Seaquest 68.4 / 42054.7). Every number below was checked against two
independent public transcriptions of the table (DeepMind's DQN Zoo, Quan and Ostrovski 2020, for
all 57 games; Schwarzer et al.'s SPR, "Data-Efficient Reinforcement Learning with
Self-Predictive Representations", ICLR 2021, for the 26 Atari-100k games).

* VideoPinball: the table's random score (16256.9) is close to its human score (17667.9); some
  later tables list 0.0 instead. This module keeps the source's value.
* Carnival and Pooyan (XTRA's pre-training games) are not among the 57 games of the standard
  table and no published random or human reference exists for them: both scores are ``None``, and
  a report shows their raw scores and says so (:func:`human_normalised` raises for them).
"""
from __future__ import annotations

from typing import NamedTuple


class ReferenceScores(NamedTuple):
    """A game's published random-policy and human scores (``None``: none published)."""

    random: float | None
    human: float | None


#: the 26 games of the Atari-100k benchmark (Kaiser et al., "Model-Based Reinforcement Learning for
#: Atari", ICLR 2020), in the order the papers list them
ATARI100K_GAMES = (
    "Alien", "Amidar", "Assault", "Asterix", "BankHeist", "BattleZone", "Boxing", "Breakout",
    "ChopperCommand", "CrazyClimber", "DemonAttack", "Freeway", "Frostbite", "Gopher", "Hero",
    "Jamesbond", "Kangaroo", "Krull", "KungFuMaster", "MsPacman", "Pong", "PrivateEye", "Qbert",
    "RoadRunner", "Seaquest", "UpNDown",
)

#: XTRA's games outside Atari-100k (its Diverse pre-training set; Carnival, Centipede and Phoenix
#: are also Shooter games, WizardOfWor a Maze game)
XTRA_EXTRA_GAMES = (
    "Carnival", "Centipede", "Phoenix", "Pooyan", "Riverraid", "VideoPinball", "WizardOfWor",
    "YarsRevenge",
)

#: game -> (random, human), Wang et al. (2016), no-op starts
SCORES: dict[str, ReferenceScores] = {
    "Alien": ReferenceScores(227.8, 7127.7),
    "Amidar": ReferenceScores(5.8, 1719.5),
    "Assault": ReferenceScores(222.4, 742.0),
    "Asterix": ReferenceScores(210.0, 8503.3),
    "BankHeist": ReferenceScores(14.2, 753.1),
    "BattleZone": ReferenceScores(2360.0, 37187.5),
    "Boxing": ReferenceScores(0.1, 12.1),
    "Breakout": ReferenceScores(1.7, 30.5),
    "ChopperCommand": ReferenceScores(811.0, 7387.8),
    "CrazyClimber": ReferenceScores(10780.5, 35829.4),
    "DemonAttack": ReferenceScores(152.1, 1971.0),
    "Freeway": ReferenceScores(0.0, 29.6),
    "Frostbite": ReferenceScores(65.2, 4334.7),
    "Gopher": ReferenceScores(257.6, 2412.5),
    "Hero": ReferenceScores(1027.0, 30826.4),
    "Jamesbond": ReferenceScores(29.0, 302.8),
    "Kangaroo": ReferenceScores(52.0, 3035.0),
    "Krull": ReferenceScores(1598.0, 2665.5),
    "KungFuMaster": ReferenceScores(258.5, 22736.3),
    "MsPacman": ReferenceScores(307.3, 6951.6),
    "Pong": ReferenceScores(-20.7, 14.6),
    "PrivateEye": ReferenceScores(24.9, 69571.3),
    "Qbert": ReferenceScores(163.9, 13455.0),
    "RoadRunner": ReferenceScores(11.5, 7845.0),
    "Seaquest": ReferenceScores(68.4, 42054.7),
    "UpNDown": ReferenceScores(533.4, 11693.2),
    "Carnival": ReferenceScores(None, None),
    "Centipede": ReferenceScores(2090.9, 12017.0),
    "Phoenix": ReferenceScores(761.4, 7242.6),
    "Pooyan": ReferenceScores(None, None),
    "Riverraid": ReferenceScores(1338.5, 17118.0),
    "VideoPinball": ReferenceScores(16256.9, 17667.9),
    "WizardOfWor": ReferenceScores(563.5, 4756.5),
    "YarsRevenge": ReferenceScores(3092.9, 54576.9),
}

#: game -> the ROM id ale-py knows it by (``ale_py.roms.get_rom_path``)
ROM_IDS: dict[str, str] = {
    "Alien": "alien", "Amidar": "amidar", "Assault": "assault", "Asterix": "asterix",
    "BankHeist": "bank_heist", "BattleZone": "battle_zone", "Boxing": "boxing",
    "Breakout": "breakout", "ChopperCommand": "chopper_command", "CrazyClimber": "crazy_climber",
    "DemonAttack": "demon_attack", "Freeway": "freeway", "Frostbite": "frostbite",
    "Gopher": "gopher", "Hero": "hero", "Jamesbond": "jamesbond", "Kangaroo": "kangaroo",
    "Krull": "krull", "KungFuMaster": "kung_fu_master", "MsPacman": "ms_pacman", "Pong": "pong",
    "PrivateEye": "private_eye", "Qbert": "qbert", "RoadRunner": "road_runner",
    "Seaquest": "seaquest", "UpNDown": "up_n_down", "Carnival": "carnival",
    "Centipede": "centipede", "Phoenix": "phoenix", "Pooyan": "pooyan", "Riverraid": "riverraid",
    "VideoPinball": "video_pinball", "WizardOfWor": "wizard_of_wor",
    "YarsRevenge": "yars_revenge",
}

_BY_ROM_ID = {rom: game for game, rom in ROM_IDS.items()}


def game_name(game: str) -> str:
    """The table's name of ``game``, given by that name (``"MsPacman"``) or its ROM id
    (``"ms_pacman"``)."""
    if game in SCORES:
        return game
    if game in _BY_ROM_ID:
        return _BY_ROM_ID[game]
    raise KeyError(f"no reference scores for Atari game {game!r} (known: {sorted(SCORES)}, "
                   f"or their ROM ids {sorted(_BY_ROM_ID)})")


def has_human_score(game: str) -> bool:
    return SCORES[game_name(game)].human is not None


def human_normalised(game: str, score: float) -> float:
    """``(score - random) / (human - random)``: 0 at the random policy's score, 1 at the human
    tester's. Raises ``ValueError`` for a game without published reference scores."""
    name = game_name(game)
    ref = SCORES[name]
    if ref.random is None or ref.human is None:
        raise ValueError(f"Atari game {name!r} has no published human score: report its raw "
                         f"score instead")
    return (float(score) - ref.random) / (ref.human - ref.random)
