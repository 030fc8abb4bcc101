"""EfficientZero's networks: shapes at every size, the paper's parameter count by hand, the
value-prefix LSTM state threaded explicitly, zero-initialised outputs, gradient paths, the
component vocabulary, and a graph-break-free compiled unroll step."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_wm.components import COMPONENTS, SUBMODULES, check_vocabulary, select
from lightning_wm.nets.efficientzero import (
    PAPER_SUPPORT_SIZE, SIZES, Dynamics, Representation, build_efficientzero,
)
from lightning_wm.nets.efficientzero_blocks import ZeroLinear, min_max
from lightning_wm.nets.init import init_weights

SUPPORT = 21  # a toy support, -10..10
ACTIONS = 3
#: (size, observation shape): the tiny size on a 5-state chain's one-hot vector and on frames
CASES = [("tiny", (5,)), ("tiny", SIZES["tiny"].obs_shape), ("small", SIZES["small"].obs_shape),
         ("paper", SIZES["paper"].obs_shape)]


def _build(size: str, obs_shape, actions: int = ACTIONS, support: int = SUPPORT, **kw):
    torch.manual_seed(0)
    return build_efficientzero(size, obs_shape, actions, support, support, **kw)


def _obs(obs_shape, batch: int = 2) -> torch.Tensor:
    if len(obs_shape) == 3:
        return torch.randint(0, 256, (batch, *obs_shape), dtype=torch.uint8)
    return F.one_hot(torch.arange(batch) % obs_shape[0], obs_shape[0]).float()


def _randomise_outputs(nets: nn.ModuleDict) -> None:
    """Give the zero-initialised output layers weights, as one training step would."""
    with torch.no_grad():
        for m in nets.modules():
            if isinstance(m, ZeroLinear):
                m.weight.normal_(0, 0.5)
                m.bias.normal_(0, 0.5)


@pytest.mark.parametrize("size,obs_shape", CASES)
def test_output_shapes(size, obs_shape):
    nets = _build(size, obs_shape)
    s = SIZES[size]
    grid = (1, 1) if len(obs_shape) == 1 else tuple(math.ceil(n / s.downsample)
                                                    for n in obs_shape[1:])
    latent = nets["representation"](_obs(obs_shape))
    assert latent.shape == (2, s.channels, *grid)
    assert nets["representation"].latent_shape == (s.channels, *grid)
    hidden = nets["dynamics"].initial_hidden(2)
    nxt, prefix, (h, c) = nets["dynamics"](latent, torch.tensor([0, ACTIONS - 1]), hidden)
    assert nxt.shape == latent.shape and prefix.shape == (2, SUPPORT)
    assert h.shape == c.shape == (2, s.lstm_hidden)
    policy, value = nets["prediction"](nxt)
    assert policy.shape == (2, ACTIONS) and value.shape == (2, SUPPORT)
    proj = nets["projection"](nxt)
    assert proj.shape == (2, s.proj_out)
    assert nets["predictor"](proj).shape == (2, s.pred_out)


def test_paper_latent_is_6x6_from_96x96():
    assert SIZES["paper"].obs_shape == (12, 96, 96)
    rep = Representation((12, 96, 96), 64, 1)
    assert rep.latent_shape == (64, 6, 6)
    assert rep(torch.zeros(1, 12, 96, 96, dtype=torch.uint8)).shape == (1, 64, 6, 6)


def _paper_parameters_by_hand(actions: int, support: int) -> dict[str, int]:
    """The paper size's parameters from the architecture (c = 64 channels, 16 reduced channels,
    a 6×6 latent, 32-unit head layers, LSTM 512; convs bias-free, BN = 2 per channel)."""
    c, half, k = 64, 32, 9  # 3×3 kernels
    block = 2 * (c * c * k) + 2 * (2 * c)                                    # 73 984
    representation = (
        12 * half * k + 2 * half                                             # stride-2 stem
        + 2 * (half * half * k) + 2 * (2 * half)                             # block at c/2
        + (half * c * k) + (c * c * k) + 2 * (2 * c) + (half * c * k)        # stride-2 block + skip
        + 2 * block                                                          # two blocks at c
        + block                                                              # representation block
    )                                                                        # 318 016
    reduced, cells, lstm, fc = 16, 36, 512, 32
    reduce = c * reduced + reduced + 2 * reduced                             # 1×1 conv + bias + BN
    head_hidden = reduced * cells * fc + fc + 2 * fc                         # Linear 576->32 + BN
    dynamics = (
        c * c * k + 1 * c * k + 2 * c + block                       # [s ; a/A] conv, BN, block
        + reduce + 4 * lstm * (reduced * cells + lstm) + 2 * 4 * lstm  # LSTM: 4 gates, 2 biases
        + 2 * lstm + lstm * fc + fc + 2 * fc + fc * support + support        # BN, MLP, output
    )                                                                        # 2 382 281 at 601
    prediction = (block + 2 * (reduce + head_hidden)
                  + fc * support + support + fc * actions + actions)         # value, policy outputs
    projection = (c * cells * 1024 + 1024 + 2 * 1024) + 2 * (1024 * 1024 + 1024 + 2 * 1024)
    predictor = 1024 * 512 + 512 + 2 * 512 + 512 * 1024 + 1024
    return {"representation": representation, "dynamics": dynamics, "prediction": prediction,
            "projection": projection, "predictor": predictor}


def test_paper_parameter_count():
    actions = 18  # Atari's full action set
    nets = _build("paper", SIZES["paper"].obs_shape, actions, PAPER_SUPPORT_SIZE)
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in nets.items()}
    print(f"\npaper-size parameters (A = 18, supports 601): {counts}, "
          f"total {sum(counts.values())}")
    assert counts == _paper_parameters_by_hand(actions, PAPER_SUPPORT_SIZE)
    # 8 350 114 + 33·A: the same count as EfficientZero's released network without the layers
    # it builds but never calls
    assert sum(counts.values()) == 8_350_114 + 33 * actions


def _multiply_adds(size: str) -> int:
    """Multiply-adds of one initial inference and one recurrent step (conv, linear, LSTM)."""
    nets = _build(size, SIZES[size].obs_shape, 18, PAPER_SUPPORT_SIZE).eval()
    total = 0

    def count(module, inputs, out):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += out.numel() * module.in_channels * math.prod(module.kernel_size)
        elif isinstance(module, (nn.Linear, ZeroLinear)):
            total += out.numel() * module.weight.shape[1]
        elif isinstance(module, nn.LSTMCell):
            total += out[0].numel() * 4 * (module.input_size + module.hidden_size)
    for m in nets.modules():
        m.register_forward_hook(count)
    with torch.no_grad():
        latent = nets["representation"](_obs(SIZES[size].obs_shape, 1))
        nets["prediction"](latent)
        dynamics = nets["dynamics"]
        nxt, _, _ = dynamics(latent, torch.zeros(1, dtype=torch.long), dynamics.initial_hidden(1))
        nets["prediction"](nxt)
    return total


def test_small_costs_about_a_tenth_of_paper():
    ratio = _multiply_adds("paper") / _multiply_adds("small")
    assert 7 < ratio < 13, ratio


def test_vector_tiny_has_a_few_thousand_parameters():
    nets = _build("tiny", (5,))
    assert 1_000 < sum(p.numel() for p in nets.parameters()) < 10_000


def test_same_seed_same_networks():
    a, b = _build("tiny", (5,)), _build("tiny", (5,))
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    torch.manual_seed(1)
    c = build_efficientzero("tiny", (5,), ACTIONS, SUPPORT, SUPPORT)
    assert not torch.equal(a["dynamics"].state_input.weight, c["dynamics"].state_input.weight)


def test_uint8_frames_are_scaled_to_unit_range():
    rep = _build("tiny", SIZES["tiny"].obs_shape)["representation"]
    frames = _obs(SIZES["tiny"].obs_shape, 4)
    assert torch.allclose(rep(frames), rep(frames.float() / 255.0), atol=1e-6)


def _tiny_unroll_inputs(nets, steps: int = 3, batch: int = 4):
    torch.manual_seed(1)
    latent = nets["representation"](_obs((5,), batch))
    actions = torch.randint(0, ACTIONS, (batch, steps))
    hidden = nets["dynamics"].initial_hidden(batch)
    return latent, actions, hidden


def test_lstm_state_threaded_explicitly():
    nets = _build("tiny", (5,))
    _randomise_outputs(nets)
    dynamics: Dynamics = nets["dynamics"]
    latent, actions, hidden = _tiny_unroll_inputs(nets)
    lstm_inputs = []
    dynamics.value_prefix.lstm.register_forward_hook(lambda m, i, o: lstm_inputs.append(i[0]))
    latents, logits, (h, c) = dynamics.unroll(latent, actions, hidden)
    assert latents.shape == (4, 3, 8, 1, 1) and logits.shape == (4, 3, SUPPORT)
    # one call at a time, the state carried by hand
    s, state = latent, hidden
    for k in range(3):
        s, step_logits, state = dynamics(s, actions[:, k], state)
        assert torch.allclose(s, latents[:, k]) and torch.allclose(step_logits, logits[:, k])
    assert torch.allclose(state[0], h) and torch.allclose(state[1], c)
    # the carried state is that of a sequence LSTM with the same weights over the same inputs
    cell = dynamics.value_prefix.lstm
    seq = nn.LSTM(cell.input_size, cell.hidden_size)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(seq, f"{name}_l0").copy_(getattr(cell, name))
    _, (h_seq, c_seq) = seq(torch.stack(lstm_inputs[:3]), (hidden[0][None], hidden[1][None]))
    assert torch.allclose(h_seq[0], h, atol=1e-6) and torch.allclose(c_seq[0], c, atol=1e-6)


def test_lstm_state_changes_the_value_prefix_and_resets():
    nets = _build("tiny", (5,))
    _randomise_outputs(nets)
    dynamics: Dynamics = nets["dynamics"]
    latent, actions, hidden = _tiny_unroll_inputs(nets)
    _, carried, state = dynamics(latent, actions[:, 0], hidden)
    _, fresh, _ = dynamics(latent, actions[:, 0], (torch.randn_like(hidden[0]), hidden[1]))
    assert not torch.allclose(carried, fresh)
    reset = dynamics.reset_hidden(state, torch.tensor([True, False, True, False]))
    for old, new in zip(state, reset):
        assert torch.equal(new[[0, 2]], torch.zeros_like(new[[0, 2]]))
        assert torch.equal(new[[1, 3]], old[[1, 3]])
    assert all(torch.equal(x, torch.zeros(4, 16)) for x in dynamics.initial_hidden(4))


@pytest.mark.parametrize("reinit", [False, True], ids=["built", "library-init-rule"])
def test_zero_initialised_outputs_give_uniform_categoricals(reinit):
    nets = _build("tiny", SIZES["tiny"].obs_shape)
    if reinit:  # what every agent and every transfer re-initialisation applies
        init_weights(nets)
    latent = nets["representation"](_obs(SIZES["tiny"].obs_shape, 4))
    _, prefix, _ = nets["dynamics"](latent, torch.arange(4) % ACTIONS,
                                    nets["dynamics"].initial_hidden(4))
    policy, value = nets["prediction"](latent)
    support = torch.arange(SUPPORT) - SUPPORT // 2
    for logits in (prefix, value, policy):
        assert torch.equal(logits, torch.zeros_like(logits))
    for logits in (prefix, value):
        probs = logits.softmax(-1)
        assert torch.allclose(probs, torch.full_like(probs, 1 / SUPPORT))
        assert torch.allclose(probs @ support.float(), torch.zeros(4), atol=1e-6)
    assert torch.allclose(policy.softmax(-1), torch.full_like(policy, 1 / ACTIONS))


def _value_prefix_loss(nets, obs_shape) -> torch.Tensor:
    latent = nets["representation"](_obs(obs_shape, 4))
    _, logits, _ = nets["dynamics"].unroll(latent, torch.arange(8).view(4, 2) % ACTIONS)
    target = torch.tensor([0, 3, 11, 20]).repeat_interleave(2)
    return F.cross_entropy(logits.flatten(0, 1), target)


@pytest.mark.parametrize("obs_shape", [(5,), SIZES["tiny"].obs_shape])
def test_value_prefix_gradient_reaches_representation_through_dynamics(obs_shape):
    nets = _build("tiny", obs_shape)
    # at initialisation the zero output layer passes no gradient back (EfficientZero's first
    # updates train only the output layers)
    _value_prefix_loss(nets, obs_shape).backward()
    assert nets["dynamics"].value_prefix.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None or not p.grad.any() for p in nets["representation"].parameters())
    nets.zero_grad(set_to_none=True)
    _randomise_outputs(nets)
    _value_prefix_loss(nets, obs_shape).backward()
    for name in ("representation", "dynamics"):
        for pname, p in nets[name].named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}.{pname}"


def test_action_encodings():
    for encoding, planes in (("scalar", 1), ("one_hot", ACTIONS)):
        dynamics = _build("tiny", SIZES["tiny"].obs_shape, action_encoding=encoding)["dynamics"]
        latent = torch.rand(3, 8, 4, 4)
        code = dynamics.action_planes(torch.tensor([0, 1, 2]), latent)
        assert code.shape == (3, planes, 4, 4)
        assert dynamics.action_input.weight.shape[1] == planes
        same = latent[:1].expand(3, -1, -1, -1)
        nxt, _, _ = dynamics(same, torch.tensor([0, 1, 2]), dynamics.initial_hidden(3))
        assert not torch.allclose(nxt[0], nxt[1]) and not torch.allclose(nxt[1], nxt[2])
    expected = torch.tensor([0.0, 1 / 3, 2 / 3])  # EfficientZero's plane: a / A
    scalar = _build("tiny", (5,))["dynamics"].action_planes(torch.tensor([0, 1, 2]),
                                                             torch.rand(3, 8, 1, 1))
    assert torch.allclose(scalar.flatten(), expected)
    with pytest.raises(ValueError, match="action_encoding"):
        _build("tiny", (5,), action_encoding="binary")


def test_normalised_latents_span_unit_range():
    nets = _build("tiny", SIZES["tiny"].obs_shape, normalise_latent=True)
    latent = nets["representation"](_obs(SIZES["tiny"].obs_shape, 4))
    nxt, _, _ = nets["dynamics"](latent, torch.arange(4) % ACTIONS,
                                 nets["dynamics"].initial_hidden(4))
    for x in (latent, nxt):
        flat = x.flatten(1)
        assert torch.allclose(flat.min(1).values, torch.zeros(4))
        assert torch.allclose(flat.max(1).values, torch.ones(4))
    assert torch.equal(min_max(torch.zeros(2, 3, 1, 1)), torch.zeros(2, 3, 1, 1))  # finite


def test_bad_shapes_and_downsampling_are_refused():
    with pytest.raises(ValueError, match="downsample"):
        Representation((1, 16, 16), 8, 1, downsample=3)
    with pytest.raises(ValueError, match=r"\[D\] or \[C, H, W\]"):
        Representation((16, 16), 8, 1)


OLD_COMPONENTS = ["encoder", "representation", "transition", "decoder", "reward", "discount",
                  "value", "actor", "q"]


def test_component_vocabulary_and_addresses():
    assert list(COMPONENTS)[:len(OLD_COMPONENTS)] == OLD_COMPONENTS
    new = ["dynamics", "prediction", "projection", "predictor"]
    assert set(new) <= set(COMPONENTS)
    assert {"out", "hidden", "action_input", "value_prefix", "lstm"} <= set(SUBMODULES)
    nets = _build("tiny", (5,))
    check_vocabulary(nets)
    found = select(nets, ["dynamics.action_input", "dynamics.value_prefix.lstm",
                          "dynamics.value_prefix.out", "prediction.value_head.out",
                          "prediction.policy_head.out", "projection.out", "predictor.out"])
    assert isinstance(found["dynamics.value_prefix.lstm"], nn.LSTMCell)
    assert isinstance(found["prediction.value_head.out"], ZeroLinear)
    assert found["dynamics.action_input"] is nets["dynamics"].action_input


@pytest.mark.slow
def test_compiled_unroll_step_has_no_graph_breaks():
    nets = _build("tiny", (5,))
    _randomise_outputs(nets)
    dynamics, prediction = nets["dynamics"], nets["prediction"]

    def step(latent, action, h, c):
        nxt, prefix, (h, c) = dynamics(latent, action, (h, c))
        policy, value = prediction(nxt)
        return nxt, prefix, policy, value, h, c

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, backend="eager")  # raises on a graph break
    latent, actions, (h, c) = _tiny_unroll_inputs(nets)
    for got, want in zip(compiled(latent, actions[:, 0], h, c), step(latent, actions[:, 0], h, c)):
        assert torch.allclose(got, want, atol=1e-6)
