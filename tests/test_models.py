import pytest
import torch
import torch.nn as nn

from auhm.data.corpora import corpus_spec
from auhm.models import build_model, list_methods, load_checkpoint, read_checkpoint_info, save_checkpoint
from auhm.models.reparam import ReparamConv2d

AUS = corpus_spec("bp4d").aus  # 5 AUs keep the heads small
TRANSFER = ("adaptation", "attention", "random-backbone")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def n_params(module: nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


@pytest.fixture(scope="module")
def landmark_state():
    torch.manual_seed(0)
    net = build_model("landmarks", preset="small")
    # non-trivial BN statistics, so that a wrong eval/train mode would show in the outputs
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval().state_dict()


def test_registry_lists_the_paper_methods():
    assert set(list_methods()) == {"scratch", "landmarks", "finetune", "adaptation", "attention", "reparam", "random-backbone", "resnet18"}
    with pytest.raises(ValueError, match="unknown method"):
        build_model("vit", AUS)
    with pytest.raises(ValueError, match="unknown preset"):
        build_model("scratch", AUS, preset="huge")


@pytest.mark.parametrize("method", ["scratch", "landmarks", "finetune", "adaptation", "attention", "reparam", "random-backbone", "resnet18"])
def test_forward_backward_small(method):
    torch.manual_seed(0)
    model = build_model(method, AUS, preset="small").train()
    assert (model.input_size, model.map_size, model.method) == (128, 32, method)
    x = torch.rand(2, 3, 128, 128)
    out = model(x)
    n = 68 if method == "landmarks" else len(AUS)
    if method == "resnet18":
        assert model.output_kind == "regression" and set(out) == {"intensities"}
        assert out["intensities"].shape == (2, n)
        loss = out["intensities"].square().mean()
    else:
        assert model.output_kind == "heatmap"
        assert out["heatmaps"].shape == (2, n, 32, 32)
        assert ("landmark_heatmaps" in out) == (method in TRANSFER)
        if method in TRANSFER:
            assert out["landmark_heatmaps"].shape == (2, 68, 32, 32)
        loss = out["heatmaps"].square().mean()
    loss.backward()
    for p in model.parameters():
        assert (p.grad is not None) == p.requires_grad
    assert all(p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad and p.dim() > 1)


@pytest.mark.parametrize("method", TRANSFER)
def test_transfer_freezes_the_landmark_network(method, landmark_state):
    kw = {} if method == "random-backbone" else {"backbone": landmark_state}
    model = build_model(method, AUS, preset="small", **kw).train()
    assert n_params(model.backbone, trainable=True) == 0
    assert n_params(model, trainable=True) == n_params(model) - n_params(model.backbone)
    assert n_params(model, trainable=True) > 0
    assert not model.backbone.training and all(not m.training for m in model.backbone.modules())
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model(torch.rand(2, 3, 128, 128))
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats untouched in train mode


def test_adaptation_reuses_the_backbone_pass(landmark_state):
    lm_net = build_model("landmarks", preset="small")
    lm_net.load_state_dict(landmark_state)
    model = build_model("adaptation", AUS, preset="small", backbone=landmark_state).eval()
    x = torch.rand(2, 3, 128, 128)
    calls = []
    model.backbone.register_forward_pre_hook(lambda *_: calls.append(1))
    orig = model.backbone.forward_features
    model.backbone.forward_features = lambda t: (calls.append(1), orig(t))[1]
    out = model(x)
    assert len(calls) == 1
    torch.testing.assert_close(out["landmark_heatmaps"], lm_net.eval()(x)["heatmaps"])


def test_finetune_starts_from_landmark_weights(landmark_state):
    model = build_model("finetune", AUS, preset="small", backbone=landmark_state)
    sd = model.state_dict()
    for k, v in landmark_state.items():
        if k == "intensity_scale":  # the AU read-out, not the network's weights
            continue
        if k.startswith("net.head.out."):  # the last conv alone is new: AU maps, not landmarks
            assert sd[k].shape[0] == len(AUS)
        else:
            assert torch.equal(sd[k], v), k
    assert n_params(model, trainable=True) == n_params(model)


def test_reparam_identity_reproduces_backbone(landmark_state):
    lm_net = build_model("landmarks", preset="small")
    lm_net.load_state_dict(landmark_state)
    lm_net.eval()
    model = build_model("reparam", AUS, preset="small", backbone=landmark_state).train()
    convs = [m for m in model.net.modules() if isinstance(m, ReparamConv2d)]
    n_convs = sum(isinstance(m, nn.Conv2d) for m in lm_net.net.modules()) - 1  # all but the last layer
    assert len(convs) == n_convs and isinstance(model.net.head.out, nn.Conv2d)
    trainable = sum(c.out_channels**2 for c in convs) + n_params(model.net.head.out)
    assert n_params(model, trainable=True) == trainable
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        # train() must leave the frozen BatchNorms in eval mode, so this equals the eval backbone
        want = lm_net.net.trunk(lm_net.net.features(x))
        got = model.net.trunk(model.net.features(x))
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        convs[3].projection.add_(0.05 * torch.randn_like(convs[3].projection))
        assert (model.net.trunk(model.net.features(x)) - want).abs().max() > 1e-3


def test_paper_preset_parameter_counts():
    scratch = build_model("scratch", corpus_spec("disfa").aus)
    assert (scratch.input_size, scratch.map_size) == (256, 64)
    assert 1.55e6 <= n_params(scratch) <= 1.80e6  # paper: 1.65 M
    assert n_params(build_model("resnet18", corpus_spec("disfa").aus)) == pytest.approx(11.17e6, rel=0.01)
    reparam = build_model("reparam", corpus_spec("disfa").aus)
    assert n_params(reparam, trainable=True) == pytest.approx(130e3, rel=0.3)  # paper: ~130 K
    adaptation = build_model("adaptation", corpus_spec("disfa").aus)
    assert n_params(adaptation.backbone) == n_params(build_model("landmarks"))


@pytest.mark.parametrize("method", ["scratch", "landmarks", "finetune", "adaptation", "attention", "reparam", "random-backbone", "resnet18"])
def test_checkpoint_round_trip(method, tmp_path, landmark_state):
    torch.manual_seed(1)
    kw = {"backbone": landmark_state} if method in ("finetune", "adaptation", "attention", "reparam") else {}
    model = build_model(method, AUS, preset="small", **kw).eval()
    x = torch.rand(2, 3, 128, 128)
    out = model(x)
    path = save_checkpoint(tmp_path / "m.pt", model, {"crop": {"size": 128, "scale": 1.3, "shift_y": -0.08}, "train_config": {"lr": 1e-3}})
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind
    loaded, info = load_checkpoint(path)
    assert info["method"] == method and info["preset"] == "small" and info["input_size"] == 128
    assert info["aus"] == ([] if method == "landmarks" else list(AUS)) and info["crop"]["size"] == 128
    assert info["task"] == ("landmarks" if method == "landmarks" else "au") and "auhm_version" in info
    assert read_checkpoint_info(path)["train_config"] == {"lr": 1e-3}
    assert not loaded.training
    out2 = loaded(x)
    assert set(out2) == set(out) and all(torch.equal(out[k], out2[k]) for k in out)


def test_backbone_from_landmarks_checkpoint_file(tmp_path, landmark_state):
    lm_net = build_model("landmarks", preset="small")
    lm_net.load_state_dict(landmark_state)
    path = save_checkpoint(tmp_path / "landmarks.pt", lm_net)
    a = build_model("adaptation", AUS, preset="small", backbone=path)
    assert all(torch.equal(a.backbone.state_dict()[k], v) for k, v in lm_net.net.state_dict().items())
    au_ckpt = save_checkpoint(tmp_path / "au.pt", build_model("scratch", AUS, preset="small"))
    with pytest.raises(ValueError, match="an AU checkpoint .*, where a landmark checkpoint is needed"):
        build_model("adaptation", AUS, preset="small", backbone=au_ckpt)
    with pytest.raises(ValueError, match="does not match preset"):
        build_model("adaptation", AUS, preset="paper", backbone=path)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        build_model("adaptation", AUS, preset="small", backbone=tmp_path / "missing.pt")


def test_bad_checkpoint_fails_with_its_path(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pt"):
        load_checkpoint(bad)
    plain = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(1)}, plain)
    with pytest.raises(ValueError, match="not an auhm checkpoint"):
        load_checkpoint(plain)


@pytest.mark.parametrize("content", ["random", "pickled module", "truncated"])
def test_a_foreign_file_is_not_an_auhm_checkpoint_and_unsafe_loading_is_never_suggested(tmp_path, content):
    path = tmp_path / "x.pt"
    if content == "random":
        path.write_bytes(torch.randint(0, 256, (3000,), dtype=torch.uint8).numpy().tobytes())
    elif content == "pickled module":  # loads only with weights_only=False, which could run code
        torch.save({"model": nn.Linear(2, 2)}, path)
    else:
        save_checkpoint(path, build_model("scratch", AUS, preset="small"))
        path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not an auhm checkpoint")
    assert "weights_only" not in message and "arbitrary code" not in message and "\n" not in message


def test_a_checkpoint_of_the_other_task_says_what_it_is_and_what_was_expected(tmp_path):
    lm = save_checkpoint(tmp_path / "lm.pt", build_model("landmarks", preset="small"), {"task": "landmarks"})
    au = save_checkpoint(tmp_path / "au.pt", build_model("scratch", AUS, preset="small"))
    with pytest.raises(ValueError, match=r"lm.pt: a landmark checkpoint \(method 'landmarks'\), where an AU checkpoint is needed \(one from `auhm train`\)"):
        load_checkpoint(lm, task="au")
    with pytest.raises(ValueError, match=r"au.pt: an AU checkpoint \(method 'scratch'\), where a landmark checkpoint is needed"):
        load_checkpoint(au, task="landmarks")
    assert load_checkpoint(lm, task="landmarks")[1]["method"] == "landmarks"
    assert load_checkpoint(au, task="au")[1]["method"] == "scratch"


# ── face-alignment's FAN as backbone ────────────────────────────────────────────────────────
@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_fan2d_missing_weights_says_where(torch_home):
    from auhm.models.fan2d import fan_weights_path

    assert fan_weights_path() is None
    with pytest.raises(FileNotFoundError, match=str(torch_home)):
        build_model("adaptation", AUS, preset="small", backbone="fan2d")


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_fan2d_backbone_from_local_weights(fmt, torch_home, tmp_path):
    from face_alignment.models.fan import FAN

    from auhm.models.fan2d import fan_weights_path

    torch.manual_seed(0)
    fan = FAN(1).eval()  # one stack (2DFAN4 has four): same code path, a quarter of the size
    torch_home.mkdir(parents=True)
    if fmt == "state_dict":
        target = torch_home / "2DFAN4-0123456789.pth.tar"
        torch.save(fan.state_dict(), target)
    else:
        target = torch_home / "2DFAN4-cd938726ad.zip"
        torch.jit.trace(fan, torch.rand(1, 3, 64, 64), check_trace=False).save(str(target))
    assert fan_weights_path() == target and fan_weights_path("2DFAN-4") == target  # face-alignment spells it both ways
    model = build_model("attention", AUS, preset="small", backbone="fan2d").eval()
    assert n_params(model.backbone, trainable=True) == 0 and n_params(model, trainable=True) > 0
    x = torch.rand(1, 3, 128, 128)
    out = model(x)
    torch.testing.assert_close(out["landmark_heatmaps"], fan(x)[-1])
    ckpt = save_checkpoint(tmp_path / "fan_attention.pt", model)
    target.unlink()  # the checkpoint alone must be enough
    loaded, info = load_checkpoint(ckpt)
    assert info["model_options"]["backbone"] == "fan2d"
    assert torch.equal(loaded(x)["heatmaps"], out["heatmaps"])


# ── complexity and `auhm models` ────────────────────────────────────────────────────────────
def test_count_macs_matches_hand_count():
    from auhm.models.complexity import count_macs

    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.Flatten(), nn.Linear(4 * 16 * 16, 10))
    expected = 16 * 16 * 8 * (3 * 9) + 16 * 16 * 4 * 8 + 1024 * 10
    assert count_macs(net, 32) == expected


def test_resnet18_flops_match_table5():
    from auhm.models.complexity import method_complexity

    # ResNet-18's 1.82 G multiply-adds at 224² scale with the pixel count; Table 5 reports 2× that at 256².
    row = method_complexity("resnet18", corpus_spec("disfa").aus, "paper")
    assert row.gflops == pytest.approx(4.75, rel=0.01)
    assert row.gflops / 2 == pytest.approx(1.814 * (256 / 224) ** 2, rel=0.02)


def test_models_command_prints_table():
    from typer.testing import CliRunner

    from auhm.cli import app

    res = CliRunner().invoke(app, ["models", "--preset", "small", "--n-aus", "5"])
    assert res.exit_code == 0, res.output
    for method in ("scratch", "adaptation", "reparam", "resnet18"):
        assert method in res.output
    assert "2 × multiply-adds" in res.output
    assert CliRunner().invoke(app, ["models", "--n-aus", "40"]).exit_code == 2


def test_attention_branch_reads_maps_of_the_backbone_landmarks(landmark_state):
    from auhm.targets import attention_maps, heatmaps_to_landmarks

    model = build_model("attention", AUS, preset="small", backbone=landmark_state).eval()
    seen = []
    model.geometry_branch.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    out = model(torch.rand(2, 3, 128, 128))
    points, _ = heatmaps_to_landmarks(out["landmark_heatmaps"], 128)
    assert seen[0].shape == (2, len(AUS), 32, 32)
    torch.testing.assert_close(seen[0], attention_maps(points, AUS, 128, 32))


@pytest.mark.parametrize("method", ["attention", "reparam"])
def test_bf16_autocast_forward(method):
    model = build_model(method, AUS, preset="small").eval().to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 128, 128).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        ref = model(x)["heatmaps"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)["heatmaps"]
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05


def test_unknown_options_fail_clearly():
    with pytest.raises(ValueError, match="takes no option backbone"):
        build_model("scratch", AUS, preset="small", backbone="x.pt")
    with pytest.raises(ValueError, match="fan2d"):
        build_model("reparam", AUS, preset="small", backbone="fan2d")


def test_checkpoints_of_the_earlier_plain_head_still_load(tmp_path):
    """Before FAN's output stage, the head was the last 1×1 conv alone (keys head.weight/head.bias)."""
    from auhm.models import load_checkpoint, save_checkpoint

    net = build_model("landmarks", preset="small").eval()
    legacy = {k: v for k, v in net.state_dict().items() if not k.startswith("net.head.")}
    legacy["net.head.weight"] = torch.randn(68, 64, 1, 1)
    legacy["net.head.bias"] = torch.randn(68)
    save_checkpoint(tmp_path / "old.pt", net)
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    payload["state_dict"] = legacy
    torch.save(payload, tmp_path / "old.pt")
    model, _ = load_checkpoint(tmp_path / "old.pt")
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        want = nn.functional.conv2d(model.net.trunk(model.net.features(x)), legacy["net.head.weight"], legacy["net.head.bias"])
        torch.testing.assert_close(model(x)["heatmaps"], want)
    # and as the frozen backbone of a transfer method
    adaptation = build_model("adaptation", AUS, preset="small", backbone=tmp_path / "old.pt").eval()
    with torch.no_grad():
        torch.testing.assert_close(adaptation(x)["landmark_heatmaps"], want)
