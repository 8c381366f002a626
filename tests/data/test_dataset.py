"""Chunked streaming, seeded shuffling, splits and resuming."""

import numpy as np
import pytest
import torch

from qcalo.data.dataset import open_showers
from qcalo.data.geometry import ecal_3dgan
from qcalo.data.writer import write_showers
from qcalo.errors import ConfigError


@pytest.fixture(scope="module")
def data(sim_file):
    return open_showers(sim_file)


def ids(batches):
    """Identify showers by their primary energy (all distinct in the fixture)."""
    return np.concatenate([e.numpy() for _, e in batches])


def test_fraction_split_is_disjoint_complete_and_seeded(data):
    train, val = data.split(0.2, seed=1, block=8)
    e_train, e_val = train.energy, val.energy
    assert len(train) + len(val) == len(data)
    assert not set(e_train) & set(e_val)
    assert abs(len(val) - 40) <= 8
    again = data.split(0.2, seed=1, block=8)[1].energy
    other = data.split(0.2, seed=2, block=8)[1].energy
    np.testing.assert_array_equal(e_val, again)
    assert set(e_val) != set(other)


def test_file_split(tmp_path, small_showers):
    cells, energy = small_showers
    paths = [
        write_showers(
            tmp_path / f"f{k}.h5",
            cells[10 * k : 10 * k + 10],
            energy[10 * k : 10 * k + 10],
            ecal_3dgan(),
            "tests",
        )
        for k in range(5)
    ]
    train, val = open_showers(paths).split(0.4, by="file", seed=0)
    assert len(train.files) == 3 and len(val.files) == 2
    assert {f.path for f in train.files}.isdisjoint({f.path for f in val.files})
    with pytest.raises(ConfigError, match="two files"):
        open_showers(paths[0]).split(0.5, by="file")


def test_stream_covers_every_row_once_in_seeded_order(data):
    stream = data.stream(batch_size=16, seed=3, chunk_rows=32, buffer_chunks=2)
    first = list(stream)
    assert len(first) == len(stream) == 13
    assert all(len(e) == 16 for _, e in first[:-1]) and len(first[-1][1]) == 8
    seen = ids(first)
    np.testing.assert_array_equal(np.sort(seen), np.sort(data.energy.astype(np.float32)))
    np.testing.assert_array_equal(ids(stream), seen)  # same seed and epoch, same order
    stream.set_epoch(1)
    assert not np.array_equal(ids(stream), seen)  # a new epoch reshuffles
    cells, energy = first[0]
    assert cells.dtype == torch.float32 and cells.shape == (16, 25, 25, 25)
    # rows come with their own cells: compare to the file directly
    c_all, e_all = data.read()
    row = int(np.flatnonzero(e_all.astype(np.float32) == energy[0].item())[0])
    np.testing.assert_array_equal(cells[0].numpy(), c_all[row])


def test_resume_mid_epoch_reproduces_the_rest(data):
    stream = data.stream(batch_size=16, seed=5, chunk_rows=32, buffer_chunks=2)
    stream.set_epoch(2)
    full = list(stream)
    for start in (0, 3, 4, 9, 12):
        stream.set_epoch(2, start_batch=start)
        rest = list(stream)
        assert len(rest) == len(full) - start
        for (c1, e1), (c2, e2) in zip(rest, full[start:], strict=True):
            assert torch.equal(e1, e2) and torch.equal(c1, c2)


def test_dataloader_with_workers_sees_every_row(data):
    stream = data.stream(batch_size=16, seed=0, chunk_rows=32, buffer_chunks=1)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    seen = ids(loader)
    np.testing.assert_array_equal(np.sort(seen), np.sort(data.energy.astype(np.float32)))


def test_validation_split_streams_only_its_rows(data):
    train, val = data.split(0.25, seed=0, block=16)
    got = ids(val.stream(batch_size=7, seed=1, chunk_rows=40))
    np.testing.assert_array_equal(np.sort(got), np.sort(val.energy.astype(np.float32)))


def test_energy_power_resamples_towards_low_energies_and_resumes(data):
    """energy_power=1 draws each row in proportion to 1/E: the share of showers under 50 GeV
    in 40 epochs matches the weights (within 4 sigma of the binomial), far above the flat
    spectrum's; epochs keep their length and a mid-epoch resume gives the same rows."""
    energy = data.energy
    w = 1 / energy
    want = w[energy < 50].sum() / w.sum()
    stream = data.stream(batch_size=32, chunk_rows=64, buffer_chunks=8, energy_power=1.0, seed=3)
    drawn = []
    for epoch in range(40):
        stream.set_epoch(epoch)
        batches = list(stream)
        assert len(batches) == len(stream) and sum(len(e) for _, e in batches) == len(energy)
        drawn.append(ids(batches))
    got = np.mean(np.concatenate(drawn) < 50)
    sigma = np.sqrt(want * (1 - want) / (40 * len(energy)))
    assert abs(got - want) < 4 * sigma and got > 3 * np.mean(energy < 50)
    stream.set_epoch(39, start_batch=2)
    np.testing.assert_array_equal(ids(list(stream)), drawn[39][64:])
