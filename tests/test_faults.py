"""Fault suite for the database: edits, races, kill -9, re-adds, stale costs, bad names and places.

Each test does the fault for real (edits bytes on disk, races processes, kills a
writer with SIGKILL) and asserts that nothing is lost and the message is one clear
line.  Entries come from C models (compiled and swept in well under a second).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from axhw import entries, library
from axhw.cli import main
from axhw.errors import CharacterizationError, ConfigError, DatabaseError
from axhw.exact import exact_lut
from axhw.records import HW_FLOW_VERSION, HardwareCost, PortSpec, hw_key, read_hw_costs

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")

C_SOURCE = """#include <stdint.h>
int16_t floor16(int8_t a, int8_t b) { return (int16_t)((a * b) & ~0xF); }
int16_t exact8(int8_t a, int8_t b) { return (int16_t)(a * b); }
uint16_t exact_u8(uint8_t a, uint8_t b) { return (uint16_t)(a * b); }
"""
FLOOR16 = (exact_lut() & ~0xF).astype(np.int32)
COST = HardwareCost(area_um2=100.0, cell_count=10, delay_ns=1.5, power_mw=0.5, energy_pj=5.0, clock_ns=10.0,
                    liberty="osu018", liberty_sha256="x")


@pytest.fixture()
def c_file(tmp_path) -> Path:
    path = tmp_path / "models.c"
    path.write_text(C_SOURCE)
    return path


def _hw_bytes(key: dict) -> bytes:
    return json.dumps({"schema": 2, "key": key, "costs": [{**COST.to_json(), "flow": HW_FLOW_VERSION}]}).encode()


def _env(db: Path) -> dict[str, str]:
    return {**os.environ, "AXHW_DB": str(db), "AXHW_CACHE": str(db.parent / "cache"), "OMP_NUM_THREADS": "1"}


# --------------------------------------------------------------------------- edits are detected


def test_edited_record_is_corrupt_never_loaded_and_repaired(db, c_file):
    library.add(c_file, function="exact_u8", name="eu")
    library.add(c_file, function="floor16")
    record = db / "eu" / "record.json"
    record.write_text(record.read_text().replace('"signed": false', '"signed": true'))
    with pytest.raises(DatabaseError, match=r"eu/record.json: corrupt record \(its sha256 differs"):
        library.load("eu")
    assert library.status("eu") == "corrupt"
    table = library.list_table()  # marks the bad entry and goes on
    assert "(corrupt)" in table and "floor16" in table
    assert library.rebuild(["eu", "floor16"], progress=False) == ["eu"]
    repaired = library.load("eu")
    assert repaired.signed is False and repaired.metrics.mae == 0
    np.testing.assert_array_equal(repaired.lut, exact_lut())


def test_metrics_null_with_a_matching_digest_is_corrupt_not_a_traceback(db, c_file, capsys):
    library.add(c_file, function="floor16")
    folder = db / "floor16"
    files = entries.read_files(folder)
    record = json.loads(files["record.json"])
    record["metrics"] = None
    with entries.write_lock(db):  # a buggy writer: consistent digest, unusable record
        entries.commit(db, "floor16", {**files, "record.json": json.dumps(record).encode()})
    with pytest.raises(DatabaseError, match="corrupt record"):
        library.load("floor16")
    assert main(["list"]) == 0
    assert "(corrupt)" in capsys.readouterr().out


def test_edited_power_and_extra_files_are_detected(db, c_file):
    library.add(c_file, function="floor16")
    library.update_hw_file("floor16", lambda old, key: _hw_bytes(key))
    assert library.load("floor16").hw == COST
    hw_json = db / "floor16" / "hw.json"
    hw_json.write_text(hw_json.read_text().replace('"power_mw": 0.5', '"power_mw": 0.05'))
    with pytest.raises(DatabaseError, match="hw.json: corrupt hardware cost"):
        library.load("floor16")
    # rebuild keeps the table (it still matches its digest) and drops the damaged cost
    assert library.rebuild(["floor16"], progress=False) == ["floor16"]
    assert library.load("floor16").hw is None and "not characterized yet" in library.load("floor16").hw_note
    (db / "floor16" / "notes.txt").write_text("hi")
    with pytest.raises(DatabaseError, match="does not cover notes.txt"):
        library.load("floor16")


# --------------------------------------------------------------------------- re-adds, failed adds, stale costs


def test_readd_without_force_is_refused_and_keeps_the_entry(db, c_file, monkeypatch):
    library.add(c_file, function="floor16", name="m")
    library.update_hw_file("m", lambda old, key: _hw_bytes(key))
    with monkeypatch.context() as mp:
        mp.setattr(library, "_characterize", lambda *a, **k: pytest.fail("simulated before refusing"))
        with pytest.raises(DatabaseError, match="'m' already exists.*pass --force"):
            library.add(c_file, function="exact8", name="m")
    np.testing.assert_array_equal(library.load("m").lut, FLOOR16)
    # Same design again with --force: the cost was computed for it, so it is kept.
    assert library.add(c_file, function="floor16", name="m", force=True).hw == COST
    # Another design under that name: the cost is not carried over to it.
    replaced = library.add(c_file, function="exact8", name="m", force=True)
    np.testing.assert_array_equal(replaced.lut, exact_lut())
    assert replaced.hw is None


def test_failed_add_leaves_the_old_entry(db, c_file, tmp_path):
    library.add(c_file, function="floor16", name="m")
    before = {f: (db / "m" / f).read_bytes() for f in os.listdir(db / "m")}
    broken = tmp_path / "broken.c"
    broken.write_text("#include <stdint.h>\nint16_t floor16(int8_t a, int8_t b) { return a * b\n}\n")
    with pytest.raises(CharacterizationError):
        library.add(broken, function="floor16", name="m", force=True)
    assert {f: (db / "m" / f).read_bytes() for f in os.listdir(db / "m")} == before
    np.testing.assert_array_equal(library.load("m").lut, FLOOR16)


def test_hw_cost_is_keyed_by_everything_that_determines_it():
    ports = PortSpec("drum", "a", "b", "y", 8, 8, 16, True, {"K": 1})
    key = hw_key("ab" * 32, ports)
    data = _hw_bytes(key)
    assert read_hw_costs(data, key, "hw.json") == ((COST,), "")
    changes = {
        "rtl_sha256": hw_key("cd" * 32, ports),
        "parameters": hw_key("ab" * 32, PortSpec("drum", "a", "b", "y", 8, 8, 16, True, {"K": 7})),
        "top": hw_key("ab" * 32, PortSpec("drum2", "a", "b", "y", 8, 8, 16, True, {"K": 1})),
        "wrapper": hw_key("ab" * 32, PortSpec("drum", "a", "b", "y", 8, 8, 16, False, {"K": 1})),
        "flow": {**key, "flow": HW_FLOW_VERSION + 1},
    }
    for field, other in changes.items():
        costs, note = read_hw_costs(data, other, "hw.json")
        assert costs == () and "stale" in note and field in note, (field, note)
    old_format = json.dumps({"schema": 1, "rtl_sha256": "ab" * 32, "costs": [COST.to_json()]}).encode()
    assert "axhw rebuild" in read_hw_costs(old_format, key, "hw.json")[1]


def test_hw_cache_of_a_verilog_design_is_stale_after_a_parameter_change(tmp_path, monkeypatch):
    from axhw import hw
    from axhw.hw import cache

    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    rtl = tmp_path / "paramd.v"
    rtl.write_text("module paramd #(parameter K = 1) (input signed [7:0] a, input signed [7:0] b,\n"
                   "  output signed [15:0] y);\n  assign y = (a * b) >>> K << K;\nendmodule\n")
    k1 = hw.Design.from_verilog(rtl, PortSpec("paramd", "a", "b", "y", 8, 8, 16, True, {"K": 1}))
    k7 = hw.Design.from_verilog(rtl, PortSpec("paramd", "a", "b", "y", 8, 8, 16, True, {"K": 7}))
    cache.store(k1, COST, {})
    assert cache.lookup(k1, "x", COST.operands_sha256, 10.0) == COST
    assert k7.hw_json != k1.hw_json or cache.lookup(k7, "x", COST.operands_sha256, 10.0) is None
    # Even pointed at K=1's file, K=7 is refused: the key names the parameters.
    same_file = hw.Design(k7.name, k7.rtl, k7.rtl_sha256, k7.ports, k1.hw_json, k7.include_dirs)
    assert cache.lookup(same_file, "x", COST.operands_sha256, 10.0) is None


def test_forced_runs_get_private_build_folders(tmp_path, monkeypatch):
    from axhw.hw import cache

    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    shared = cache.build_dir("d" * 64, "l" * 64)
    first, second = cache.build_dir("d" * 64, "l" * 64, fresh=True), cache.build_dir("d" * 64, "l" * 64, fresh=True)
    assert len({shared, first, second}) == 3 and first.is_dir() and second.is_dir()


# --------------------------------------------------------------------------- races and kill -9


_ADD = "import sys; from axhw.cli import main; sys.exit(main(sys.argv[1:]))"


def test_two_writers_of_one_name_are_serialized(db, c_file):
    library.add(c_file, function="exact8", name="other")  # creates the database folder
    procs = [subprocess.Popen([sys.executable, "-c", _ADD, "add", str(c_file), "--function", fn, "--name", "same"],
                              env=_env(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for fn in ("floor16", "exact8")]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    assert "already exists" in loser[2] and "Traceback" not in loser[2]
    winner = ("floor16", "exact8")[[r[0] for r in results].index(0)]
    expected = FLOOR16 if winner == "floor16" else exact_lut()
    np.testing.assert_array_equal(library.load("same").lut, expected)


_FLIP = textwrap.dedent("""
    import sys
    from pathlib import Path
    from axhw import entries
    db, rounds = Path(sys.argv[1]), int(sys.argv[2])
    versions = [entries.read_files(db / "va"), entries.read_files(db / "vb")]
    for i in range(rounds):
        files = dict(versions[i % 2])
        with entries.write_lock(db):
            entries.commit(db, "k", files)
""")


def _two_versions(db: Path, c_file: Path) -> None:
    """Entries va (floor16) and vb (exact8); k starts as va. Records name their folder, so copy va's as k's."""
    library.add(c_file, function="floor16", name="k")
    library.add(c_file, function="exact8", name="k2")
    for src, dst in (("k", "va"), ("k2", "vb")):
        files = entries.read_files(db / src)
        record = json.loads(files["record.json"])
        record["name"] = "k"  # the flipper copies them under the name k
        with entries.write_lock(db):
            entries.commit(db, dst, {**files, "record.json": json.dumps(record).encode()})


def _check_k(db: Path) -> None:
    mult = library.load("k")
    expected = FLOOR16 if mult.description.startswith("floor16") else exact_lut()
    np.testing.assert_array_equal(mult.lut, expected)  # record and table always a pair


def test_readers_never_see_a_mixed_entry_while_a_writer_swaps(db, c_file):
    _two_versions(db, c_file)
    writer = subprocess.Popen([sys.executable, "-c", _FLIP, str(db), "150"], env=_env(db))
    loads = 0
    try:
        while writer.poll() is None:
            _check_k(db)
            loads += 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0 and loads > 0


def test_kill_9_mid_write_leaves_a_whole_entry(db, c_file):
    _two_versions(db, c_file)
    rng = random.Random(0)
    for _ in range(8):
        writer = subprocess.Popen([sys.executable, "-c", _FLIP, str(db), "100000"], env=_env(db))
        time.sleep(0.8 + rng.random() * 0.7)  # past the imports, inside the write loop
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        _check_k(db)  # the old entry or the new one, whole, never a mix and never missing
    with entries.write_lock(db):  # the next writer clears what the killed ones left
        pass
    assert not [p.name for p in db.iterdir() if p.name.startswith((".tmp-", ".old-"))]


def test_swap_without_renameat2_and_recovery_after_a_crash_between_renames(db, c_file, monkeypatch):
    library.add(c_file, function="floor16", name="m")
    monkeypatch.setattr(entries, "_exchange", lambda a, b: False)
    replaced = library.add(c_file, function="exact8", name="m", force=True)
    np.testing.assert_array_equal(replaced.lut, exact_lut())
    os.rename(db / "m", db / ".old-m-deadbeef")  # a writer killed between its two renames
    with entries.write_lock(db):
        pass
    np.testing.assert_array_equal(library.load("m").lut, exact_lut())


# --------------------------------------------------------------------------- migration and rebuild


def test_entry_from_an_older_axhw_is_migrated_without_simulation(db, c_file, monkeypatch):
    library.add(c_file, function="floor16", name="m")
    library.add(c_file, function="exact_u8", name="u")
    for name in ("m", "u"):  # as axhw wrote them before digests: schema-1 record, no digest.json
        record = json.loads((db / name / "record.json").read_text())
        record["schema"] = 1
        (db / name / "record.json").write_text(json.dumps(record))
        (db / name / "digest.json").unlink()
    record = json.loads((db / "u" / "record.json").read_text())
    record["signed"] = record["ports"]["signed"] = True  # edited before migration: the metrics give it away
    (db / "u" / "record.json").write_text(json.dumps(record))
    assert library.status("m") == "corrupt"
    with pytest.raises(DatabaseError, match="no digest.json.*axhw rebuild m"):
        library.load("m")
    real = library._characterize
    characterized = []
    monkeypatch.setattr(library, "_characterize", lambda *a, **k: characterized.append(a[0]) or real(*a, **k))
    assert library.rebuild(["m", "u"], progress=False) == ["m", "u"]
    assert [p.name for p in characterized] == ["models.c"]  # only u, whose record no longer matches its table
    np.testing.assert_array_equal(library.load("m").lut, FLOOR16)
    assert library.load("u").signed is False


def test_rebuild_reports_what_it_cannot_repair_one_line_each(db, c_file, tmp_path):
    gone = tmp_path / "gone.c"
    gone.write_text(C_SOURCE)
    library.add(gone, function="floor16", name="a1")
    library.add(gone, function="exact8", name="a2")
    library.add(c_file, function="floor16", name="ok1")
    gone.unlink()
    for name in ("a1", "a2", "ok1"):
        lut = db / name / "lut.npy"
        lut.write_bytes(lut.read_bytes()[:-8])
    with pytest.raises(DatabaseError) as info:
        library.rebuild(library.names(), progress=False)
    lines = str(info.value).splitlines()
    assert lines[0].startswith("rebuilt 1 (ok1); 2 could not be repaired")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["a1", "a2"]
    assert all("gone.c is gone" in line for line in lines[1:])
    np.testing.assert_array_equal(library.load("ok1").lut, FLOOR16)


# --------------------------------------------------------------------------- names and places


def test_names_that_are_paths_or_reserved_are_refused(db, c_file, monkeypatch, capsys):
    library.add(c_file, function="floor16", name="m")
    (db.parent / "outside").mkdir()
    shutil.copytree(db / "m", db.parent / "outside" / "x")
    for bad in ("../outside/x", "/etc", "m/../m", ".hidden"):
        with pytest.raises(ConfigError, match="invalid multiplier name"):
            library.load(bad)
    assert main(["show", "../outside/x", "--no-heatmap"]) == 2
    assert "invalid multiplier name" in capsys.readouterr().err
    monkeypatch.setattr(library, "_characterize", lambda *a, **k: pytest.fail("simulated before refusing"))
    with pytest.raises(ConfigError, match="'fp32' is reserved"):
        library.add(c_file, function="floor16", name="fp32")


def test_database_that_is_a_file_fails_before_simulation(tmp_path, monkeypatch, c_file, capsys):
    target = tmp_path / "not-a-folder"
    target.write_text("")
    monkeypatch.setenv("AXHW_DB", str(target))
    monkeypatch.setattr(library, "_characterize", lambda *a, **k: pytest.fail("simulated before checking"))
    assert main(["add", str(c_file), "--function", "floor16"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_database_fails_before_simulation(tmp_path, monkeypatch, c_file):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    monkeypatch.setenv("AXHW_DB", str(ro))
    monkeypatch.setattr(library, "_characterize", lambda *a, **k: pytest.fail("simulated before checking"))
    with pytest.raises(DatabaseError, match="read-only"):
        library.add(c_file, function="floor16")


def test_export_into_a_folder(db, c_file, tmp_path):
    library.add(c_file, function="floor16")
    assert library.export("floor16", "npy", tmp_path) == tmp_path / "floor16.npy"
    with pytest.raises(ConfigError, match="does not exist"):
        library.export("floor16", "npy", tmp_path / "nope" / "x.npy")


# --------------------------------------------------------------------------- layers


@pytest.fixture()
def layered(tmp_path, monkeypatch):
    """The real bundled database under a user database in tmp_path (no AXHW_DB)."""
    monkeypatch.delenv("AXHW_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    from axhw.paths import bundled_db_dir, user_db_dir

    assert user_db_dir() == tmp_path / "data" / "axhw" / "multipliers_db"
    return user_db_dir(), bundled_db_dir()


def test_user_and_bundled_entries_are_listed_together_and_shadowing_needs_force(layered, c_file):
    user, bundled = layered
    before = {p.name: (p / "digest.json").read_bytes() for p in bundled.iterdir() if (p / "digest.json").is_file()}
    assert "exact" in before
    library.add(c_file, function="floor16", name="mine")
    assert (user / "mine" / "digest.json").is_file()
    assert {"mine", "exact"} <= set(library.names())
    with pytest.raises(DatabaseError, match="'exact' already exists in the bundled database"):
        library.add(c_file, function="floor16", name="exact")
    with pytest.warns(UserWarning, match="now shadows the entry in"):
        shadow = library.add(c_file, function="floor16", name="exact", force=True)
    assert shadow.folder == user / "exact"
    np.testing.assert_array_equal(library.load("exact").lut, FLOOR16)
    after = {p.name: (p / "digest.json").read_bytes() for p in bundled.iterdir() if (p / "digest.json").is_file()}
    assert after == before  # the bundled database was not touched


def test_installed_wheel_writes_to_the_user_database(layered, monkeypatch):
    user, bundled = layered
    monkeypatch.setattr(library, "repo_root", lambda: None)
    from axhw.paths import rtl_dir

    assert library._write_root(rtl_dir() / "exact.v") == user
    before = (bundled / "exact" / "digest.json").read_bytes()
    _, key = library.read_hw_file("exact")
    library.update_hw_file("exact", lambda old, k: _hw_bytes(k))  # copy-on-write into the user layer
    assert (bundled / "exact" / "digest.json").read_bytes() == before
    assert library.load("exact").folder == user / "exact" and library.load("exact").hw == COST


def test_source_checkout_writes_rtl_designs_to_the_repository(layered):
    user, bundled = layered
    from axhw.paths import repo_root, rtl_dir

    if repo_root() is None:
        pytest.skip("not a source checkout")
    assert library._write_root(rtl_dir() / "exact.v") == bundled
    assert library._write_root(Path("/tmp/elsewhere.v")) == user


# --------------------------------------------------------------------------- arguments and inputs checked before work


@pytest.mark.parametrize("argv, message", [
    (["--multiplier", "exact", "--epochs", "0"], "--epochs must be at least 1"),
    (["--multiplier", "exact", "--lr", "-1"], "--lr must be a positive learning rate"),
    (["--multiplier", "nope"], "no multiplier named 'nope'"),
])
def test_retrain_refuses_bad_arguments_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    import importlib

    retrain = importlib.import_module("axhw.emulator.retraining")  # the workflow module the command calls
    monkeypatch.setattr(retrain, "retrain_config", lambda *a, **k: pytest.fail("started work"))
    assert main(["retrain", *argv, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_report_into_an_existing_file_is_refused(tmp_path, capsys):
    result, out = tmp_path / "result.json", tmp_path / "report.txt"
    result.write_text("{}")
    out.write_text("keep me")
    assert main(["report", str(result), "-o", str(out)]) == 2
    assert "is a file" in capsys.readouterr().err and out.read_text() == "keep me"


def test_corrupt_image_and_truncated_checkpoint_are_one_line_errors(tmp_path):
    import torch
    from PIL import Image

    from axhw.data import get_dataset, load_checkpoint
    from axhw.errors import DataError

    for cls in ("a", "b"):  # a test/ sub-folder, so the split reads every image (no seeded carving)
        (tmp_path / "imgs" / "test" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "test" / cls / "good.png")
    (tmp_path / "imgs" / "test" / "b" / "zbad.png").write_bytes(b"\x89PNG not really")
    dataset = get_dataset(f"imagefolder:{tmp_path / 'imgs'}", "test", image_size=8)
    dataset[0]
    with pytest.raises(DataError, match=r"zbad.png: not a readable image"):
        [dataset[i] for i in range(len(dataset))]
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:500])
    with pytest.raises(DataError, match="ckpt.pt' is unreadable.*delete it"):
        load_checkpoint(ckpt)


def test_another_design_under_a_bundled_name_shadows_it_in_the_user_database(c_file, layered):
    user, bundled = layered
    with pytest.warns(UserWarning, match="shadows"):
        mult = library.add(c_file, function="floor16", name="drum_k4", force=True)
    assert mult.folder == user / "drum_k4" and library.status("drum_k4") == "ok"


def test_another_design_under_a_bundled_name_with_one_layer(db, c_file, monkeypatch):
    monkeypatch.setattr(library, "_characterize", lambda *a, **k: pytest.fail("simulated before refusing"))
    with pytest.raises(ConfigError, match="'drum_k4' is the bundled design drum.v K=4"):
        library.add(c_file, function="floor16", name="drum_k4", force=True)


def test_a_timm_model_without_weights_is_announced_as_random():
    from axhw.models import load_model

    with pytest.warns(UserWarning, match="random weights.*no checkpoint"):
        load_model("vit_tiny_patch16_224", num_classes=10)
