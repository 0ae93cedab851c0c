"""The language model's parts: the byte corpus and its windows, the causal transformer, generation."""

from __future__ import annotations

import pytest
import torch

from train.data import ShardedBatches
from workloads.gpt.model import GPT, TokenCrossEntropy
from workloads.gpt.sampling import generate_samples
from workloads.gpt.text_data import ByteWindows, corpus_files


def test_windows_are_the_files_bytes_and_targets_are_shifted_by_one(tmp_path):
    (tmp_path / "a.txt").write_bytes(bytes(range(100)))
    (tmp_path / "b.md").write_bytes(bytes(range(100, 200)))
    train = ByteWindows(str(tmp_path / "cache"), context=8, paths=[str(tmp_path)], val_fraction=0.2, stride=4)
    inputs, targets = train.batch(torch.tensor([0, 2]))
    assert inputs.tolist() == [list(range(0, 8)), list(range(8, 16))]
    assert targets.tolist() == [list(range(1, 9)), list(range(9, 17))]
    val = ByteWindows(str(tmp_path / "cache"), context=8, split="val", paths=[str(tmp_path)], val_fraction=0.2)
    assert val.batch(torch.tensor([0]))[0].tolist() == [list(range(160, 168))]
    assert len(train) == (160 - 9) // 4 + 1


def test_the_corpus_is_built_once_and_rebuilt_when_a_file_changes(tmp_path):
    text = tmp_path / "my.txt"
    text.write_text("hello world, " * 20)
    first = ByteWindows(str(tmp_path / "cache"), context=4, paths=[str(text)])
    built = first.path.stat().st_mtime_ns
    again = ByteWindows(str(tmp_path / "cache"), context=4, paths=[str(text)])
    assert again.path == first.path and again.path.stat().st_mtime_ns == built
    text.write_text("something else entirely " * 20)
    assert ByteWindows(str(tmp_path / "cache"), context=4, paths=[str(text)]).path != first.path


def test_default_corpus_is_the_standard_librarys_source():
    files = corpus_files(None)
    assert any(f.name == "argparse.py" for f in files)
    assert not any("site-packages" in f.parts for f in files)


def test_missing_user_path_names_the_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.dataset.paths"):
        ByteWindows(str(tmp_path), context=4, paths=[str(tmp_path / "nope.txt")])


def test_sharded_windows_resume_exactly(tmp_path):
    (tmp_path / "t.txt").write_bytes(bytes(range(256)) * 8)
    data = ByteWindows(str(tmp_path / "c"), context=8, paths=[str(tmp_path / "t.txt")])
    run = ShardedBatches(data, 4, seed=3, rank=1, world_size=2)
    for _ in range(5):
        next(run)
    resumed = ShardedBatches(data, 4, seed=3, rank=1, world_size=2)
    resumed.load_state_dict(run.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(next(run), next(resumed), strict=True))


def test_gpt_is_causal_and_generates():
    torch.manual_seed(0)
    model = GPT(context=16, width=32, depth=2, heads=4).eval()
    ids = torch.randint(0, 256, (2, 10))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 256
    a, b = model(ids), model(changed)
    assert a.shape == (2, 10, 256)
    assert torch.equal(a[:, :6], b[:, :6]) and not torch.equal(a[:, 6:], b[:, 6:])
    assert 4.5 < TokenCrossEntropy()(a, ids).item() < 6.0  # about ln(256) = 5.5 before training
    assert model.generate(ids[:1], 20).shape == (1, 30)  # slides past the 16-token context
    texts = generate_samples(model, {"prompts": ["def "], "new_tokens": 5, "top_k": 10}, torch.device("cpu"))
    assert len(texts) == 1 and texts[0].startswith("def ")
