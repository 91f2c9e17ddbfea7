"""Foreign designs: EvoApproxLib and TransAxx conventions, signedness from evidence, batch import,
and designs that crash, loop, hold state or carry a Latin-1 byte.

Every design is written here; golden tables are computed independently with numpy.
C models compile and sweep in well under a second; the few Verilog sweeps take a
few seconds each.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from axhw import library
from axhw.cli import main
from axhw.errors import CharacterizationError, ConfigError, VerilogError
from axhw.simulate import decide_signedness, name_hint

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")
needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")

SIGNED = np.arange(-128, 128, dtype=np.int64)
UNSIGNED = np.arange(256, dtype=np.int64)

# EvoApproxLib's signed convention: unsigned operand and return types, two's complement inside.
C_SIGNED_UINT = """#include <stdint.h>
uint16_t mul8s_tw(uint8_t A, uint8_t B)
{
  int16_t p = (int16_t)((int8_t)A * (int8_t)B);
  return (uint16_t)(p & ~3);
}
"""
# ... and its Verilog twin on plain ports, with a Latin-1 byte in a comment.
V_SIGNED_PLAIN = (b"// mul8s_tw: the two low product bits dropped (caf\xe9, \xb5W)\n"
                  b"module mul8s_tw(A, B, O);\n"
                  b"  input [7:0] A, B;\n"
                  b"  output [15:0] O;\n"
                  b"  wire signed [15:0] p = $signed(A) * $signed(B);\n"
                  b"  assign O = p & 16'hFFFC;\n"
                  b"endmodule\n")
# EvoApproxLib's 64-bit convention, operands declared B first; the design is not symmetric.
C_UINT64 = """#include <stdint.h>
uint64_t mul8u_w64(const uint64_t B,const uint64_t A)
{
  uint64_t O = (A & 0xFF) * ((B & 0xFF) | 1);
  return O;
}
"""


def golden_signed_tw() -> np.ndarray:
    return np.multiply.outer(SIGNED, SIGNED) & ~3  # numpy & on negative int64 is two's complement


def golden_w64() -> np.ndarray:
    return np.multiply.outer(UNSIGNED, UNSIGNED | 1)  # [a, b] = a * (b | 1)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# --------------------------------------------------------------------------- deciding signedness


def test_decision_follows_the_tables_not_the_name():
    exact_s = np.multiply.outer(SIGNED, SIGNED)
    exact_u = np.multiply.outer(UNSIGNED, UNSIGNED)
    # an exact signed design: its bits read unsigned give the wrong products
    words = np.multiply.outer(UNSIGNED, UNSIGNED) & 0xFFFF
    as_unsigned_of_signed = (np.multiply.outer(np.where(UNSIGNED >= 128, UNSIGNED - 256, UNSIGNED),
                                               np.where(UNSIGNED >= 128, UNSIGNED - 256, UNSIGNED)) & 0xFFFF)
    d = decide_signedness(exact_s, as_unsigned_of_signed, names=("mul8u_liar",))
    assert d.signed is True and "the name suggests unsigned, but the tables decide" in d.reason
    signed_view = words[np.ix_(SIGNED & 0xFF, SIGNED & 0xFF)]
    signed_view = np.where(signed_view >= 1 << 15, signed_view - (1 << 16), signed_view)
    d = decide_signedness(signed_view, exact_u, names=("plain",))
    assert d.signed is False and d.error_unsigned == 0
    adder = np.add.outer(SIGNED, SIGNED)
    d = decide_signedness(adder, np.add.outer(UNSIGNED, UNSIGNED), names=("mul8s_adder",))
    assert d.signed is None and "alone is not proof" in d.reason
    assert (name_hint("mul8s_1KV6"), name_hint("mul8u_FTA"), name_hint("drum")) == (True, False, None)


@needs_cc
def test_c_signed_design_typed_unsigned_reads_twos_complement(db, tmp_path):
    mult = library.add(write(tmp_path, "mul8s_tw.c", C_SIGNED_UINT))
    assert mult.signed and mult.ports.y_width == 16
    np.testing.assert_array_equal(mult.lut, golden_signed_tw())
    reason = library.signedness_reason("mul8s_tw")
    assert "do not declare signedness" in reason and "the name agrees" in reason


@needs_cc
def test_c_uint64_operands_matched_by_name(db, tmp_path):
    path = write(tmp_path, "mul8u_w64.c", C_UINT64)
    mult = library.add(path)  # the function is named like the file
    assert not mult.signed and (mult.ports.a, mult.ports.b) == ("A", "B")
    raw = np.load(db / "mul8u_w64" / "lut.npy")
    np.testing.assert_array_equal(raw, golden_w64())
    assert raw[4, 2] == 4 * 3 and raw[2, 4] == 2 * 5  # a is A, b is B, though B is declared first
    assert mult.metrics.unsigned.wce == 255 and mult.metrics.unsigned.mae == pytest.approx(
        np.abs(golden_w64() - np.multiply.outer(UNSIGNED, UNSIGNED)).mean())


@needs_cc
def test_ambiguous_c_model_asks_and_flags_answer(db, tmp_path):
    path = write(tmp_path, "mul8s_sum.c", "#include <stdint.h>\nuint16_t mul8s_sum(uint8_t a, uint8_t b) { return a + b; }\n")
    with pytest.raises(CharacterizationError, match=r"cannot tell whether mul8s_sum .*--signed or --unsigned"):
        library.add(path)
    assert library.names() == []
    mult = library.add(path, signed=False)
    assert not mult.signed and library.signedness_reason("mul8s_sum") == "read as unsigned: given as --unsigned"


@needs_cc
def test_c_int_operands_get_each_readings_values(db, tmp_path):
    # int operands fit either reading, and so does this design: it must ask, then pass the right values
    path = write(tmp_path, "trunc2.c", "int trunc2(int a, int b) { return ((a >> 2) * 4) * b; }\n")
    with pytest.raises(CharacterizationError, match="--signed or --unsigned"):
        library.add(path)
    unsigned = library.add(path, signed=False, name="t_u")
    np.testing.assert_array_equal(np.load(db / "t_u" / "lut.npy"), np.multiply.outer((UNSIGNED >> 2) * 4, UNSIGNED))
    assert not unsigned.signed
    signed = library.add(path, signed=True, name="t_s")
    np.testing.assert_array_equal(signed.lut, np.multiply.outer((SIGNED >> 2) * 4, SIGNED))  # floor shift on negatives
    exact = write(tmp_path, "plain.c", "long plain(int a, int b) { return (long)a * b; }\n")
    assert library.add(exact).signed and "both readings are exact" in library.signedness_reason("plain")


@needs_cc
def test_crashing_c_model_is_reported_with_signal_and_operands(db, tmp_path):
    path = write(tmp_path, "crash.c", "#include <stdint.h>\n#include <stddef.h>\n"
                 "uint16_t crash(uint8_t a, uint8_t b) {\n"
                 "  if (a == 7 && b == 9) { volatile int *p = NULL; *p = 1; }\n  return a * b;\n}\n")
    with pytest.raises(CharacterizationError, match=r"crash.c: C model crash crashed with SIGSEGV at a=7, b=9"):
        library.add(path)
    assert library.names() == []


@needs_cc
def test_looping_c_model_is_stopped_with_operands(db, tmp_path):
    path = write(tmp_path, "spin.c", "#include <stdint.h>\n"
                 "uint16_t spin(uint8_t a, uint8_t b) { volatile int k = 0; if (a == 3 && b == 4) for (;;) k++; return a * b; }\n")
    start = time.monotonic()
    with pytest.raises(CharacterizationError, match=r"did not finish within 1 s .*stuck at a=3, b=4.*--time-limit"):
        library.add(path, time_limit_s=1)
    assert time.monotonic() - start < 15
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "cache") not in ps  # the driver process is gone


def test_time_limit_kills_the_whole_process_group(tmp_path):
    from axhw.subproc import TimeLimitExceeded, run_limited

    pid_file = tmp_path / "child.pid"
    with pytest.raises(TimeLimitExceeded):
        run_limited(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], timeout_s=1)
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


# --------------------------------------------------------------------------- TransAxx LUT files


def test_transaxx_round_trip_without_sign_flip(tmp_path):
    from axhw.lutfile import read_transaxx, write_transaxx

    rng = np.random.default_rng(0)
    table = np.multiply.outer(SIGNED, SIGNED) + rng.integers(-50, 50, size=(256, 256))  # not symmetric
    path = write_transaxx(table, tmp_path / "m.h")
    np.testing.assert_array_equal(read_transaxx(path), table)
    text = path.read_text()
    assert "int16_t lut [256][256]" in text
    rows = [r.strip("{}, ;\n") for r in text.split("= {", 1)[1].splitlines() if r.startswith("{")]
    by_bits = np.array([[int(v) for v in r.split(",")] for r in rows])
    assert by_bits[0xFF, 0xFF] == table[-1 + 128, -1 + 128]  # both negative: M(-1, -1), not M(1, 1)
    assert by_bits[0x80, 0x80] == table[0, 0] and by_bits[0x80, 0x01] == table[0, 129]


def test_transaxx_errors_name_file_and_line(tmp_path):
    from axhw.lutfile import read_transaxx

    short = write(tmp_path, "short.h", "#include <stdint.h>\nconst int16_t lut [256][256] = {{1, 2}};\n")
    with pytest.raises(ConfigError, match=r"short.h:2: array lut holds 2 values, expected 65,536"):
        read_transaxx(short)
    bad = write(tmp_path, "bad.h", "const int16_t lut [256][256] = {\n{1, x2}};\n")
    with pytest.raises(ConfigError, match=r"bad.h:2: 'x2' is not an integer"):
        read_transaxx(bad)


def test_transaxx_file_imports_and_exports(db, tmp_path):
    from axhw.lutfile import read_transaxx, write_transaxx

    table = (np.multiply.outer(SIGNED, SIGNED) >> 2) << 2
    path = write_transaxx(table, tmp_path / "floor4.h")
    mult = library.add(path)
    assert mult.signed and "TransAxx" in library.signedness_reason("floor4")
    np.testing.assert_array_equal(mult.lut, table)
    out = library.export("floor4", format="transaxx", out=tmp_path / "again.h")
    np.testing.assert_array_equal(read_transaxx(out), table)


# --------------------------------------------------------------------------- C entries and hardware


@needs_cc
def test_c_entry_refuses_hardware_cost_in_one_line(db, tmp_path, capsys):
    library.add(write(tmp_path, "mul8s_tw.c", C_SIGNED_UINT))
    assert main(["characterize", "--hw", "mul8s_tw"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "C model" in err[0] and "--twin" in err[0]


# --------------------------------------------------------------------------- batch import


@needs_cc
def test_batch_continues_past_bad_files(db, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    write(folder, "mul8s_tw.c", C_SIGNED_UINT)
    write(folder, "mul8u_w64.c", C_UINT64)
    write(folder, "broken.c", "#include <stdint.h>\nuint16_t broken(uint8_t a, uint8_t b) { return a * }\n")
    write(folder, "notes.h", "/* a header, not a table */\n")
    assert main(["add", str(folder), "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    assert "2 of 3 added; 1 failed" in out and "notes" not in out
    rows = {line.split()[0]: line for line in out.splitlines()[2:-1]}
    assert "failed:" in rows["broken"] and "C compiler" in rows["broken"]
    assert rows["mul8s_tw"].split()[1] == "signed" and "added" in rows["mul8s_tw"]
    assert rows["mul8u_w64"].split()[1] == "unsigned"
    assert library.names() == ["mul8s_tw", "mul8u_w64"]
    np.testing.assert_array_equal(library.load("mul8s_tw").lut, golden_signed_tw())


def test_batch_refuses_per_design_options(db, tmp_path):
    from axhw.batch import add_many

    with pytest.raises(ConfigError, match="--name"):
        add_many([tmp_path], name="x")


# --------------------------------------------------------------------------- Verilog (simulated)


@needs_iverilog
def test_plain_port_signed_verilog_with_latin1_comment(db, tmp_path, capsys):
    path = write(tmp_path, "mul8s_tw.v", V_SIGNED_PLAIN)
    assert main(["add", str(path)]) == 0
    out = capsys.readouterr().out
    assert "read as two's complement: the ports do not declare signedness" in out
    mult = library.load("mul8s_tw")
    assert mult.signed
    np.testing.assert_array_equal(mult.lut, golden_signed_tw())
    assert mult.metrics.zero_preserving and mult.metrics.wce == 3


@needs_iverilog
def test_ambiguous_verilog_stops_with_a_question(db, tmp_path):
    path = write(tmp_path, "adder.v", "module adder(input [7:0] a, input [7:0] b, output [15:0] y);\n"
                 "  assign y = a + b;\nendmodule\n")
    with pytest.raises(CharacterizationError, match=r"cannot tell whether adder .*--signed or --unsigned"):
        library.add(path)
    assert library.names() == []


@needs_yosys
def test_latch_is_rejected_with_file_and_line(db, tmp_path):
    path = write(tmp_path, "latch.v", "module latch(input [7:0] a, input [7:0] b, output reg [15:0] y);\n"
                 "  // y keeps its value when a == 0\n"
                 "  always @(*) if (a != 0) y = a * b;\nendmodule\n")
    with pytest.raises(VerilogError, match=r"latch.v:3: combinational designs only: yosys infers a latch for y"):
        library.add(path)


@needs_yosys
def test_logic_loop_is_rejected_with_file_and_line(tmp_path):
    from axhw.discover import check_combinational, discover

    path = write(tmp_path, "loopy.v", "module loopy(input [7:0] a, input [7:0] b, output [15:0] y);\n"
                 "  wire [15:0] t;\n  assign t = (a * b) ^ (t & 16'h0001 & {16{a[0]}});\n  assign y = t;\nendmodule\n")
    with pytest.raises(VerilogError, match=r"loopy.v:3: combinational designs only: yosys finds a logic loop"):
        check_combinational(path, discover(path))
    assert check_combinational(write(tmp_path, "fine.v", "module fine(input [7:0] a, input [7:0] b, output [15:0] y);\n"
                                     "  assign y = a * b;\nendmodule\n"), discover(tmp_path / "fine.v"))


@needs_iverilog
def test_state_is_caught_by_the_second_sweep(tmp_path, monkeypatch):
    # without yosys's verdict, the sweep in another order still sees the held value
    from axhw.discover import discover
    from axhw.simulate import sweep_words

    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    path = write(tmp_path, "hold.v", "module hold(input [7:0] a, input [7:0] b, output [15:0] y);\n"
                 "  reg [15:0] r;\n  always @(a or b) if (a != 8'd5) r = a * b;\n  assign y = r;\nendmodule\n")
    with pytest.raises(CharacterizationError, match=r"depends on the order operands are applied \(a=5, b=\d+"):
        sweep_words(path, discover(path))


@needs_iverilog
def test_runaway_design_is_stopped_and_leaves_no_vvp(db, tmp_path):
    path = write(tmp_path, "runaway.v", "module runaway(input [7:0] a, input [7:0] b, output reg [15:0] y);\n"
                 "  always @(a or b) while (1) y = y + 1;\nendmodule\n")
    with pytest.raises(CharacterizationError, match=r"did not finish within 4 s and was stopped.*--time-limit"):
        library.add(path, time_limit_s=4)
    time.sleep(0.3)
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if "vvp" in line and str(tmp_path) in line]


@needs_iverilog
@needs_cc
def test_c_model_with_verilog_twin_is_costable(db, tmp_path):
    folder = tmp_path / "evo"
    folder.mkdir()
    write(folder, "mul8s_tw.c", C_SIGNED_UINT)
    write(folder, "mul8s_tw.v", V_SIGNED_PLAIN)
    write(folder, "mul8u_w64.c", C_UINT64)
    from axhw.batch import add_many

    result, other = add_many([folder], progress=False)  # one command, no flags: every table right
    assert result.ok and result.twin.endswith("mul8s_tw.v")
    assert other.ok and other.signedness.startswith("unsigned")
    np.testing.assert_array_equal(np.load(db / "mul8u_w64" / "lut.npy"), golden_w64())
    mult = library.load("mul8s_tw")
    assert mult.rtl_path.endswith("mul8s_tw.v") and mult.ports.module == "mul8s_tw" and mult.ports.y == "O"
    np.testing.assert_array_equal(mult.lut, golden_signed_tw())
    from axhw.hw import as_design

    assert as_design("mul8s_tw").rtl.suffix == ".v"  # hardware cost reads the Verilog


@pytest.mark.slow
@needs_iverilog
def test_killing_axhw_leaves_no_simulator(db, tmp_path):
    import signal
    import sys

    path = write(tmp_path, "runaway.v", "module runaway(input [7:0] a, input [7:0] b, output reg [15:0] y);\n"
                 "  always @(a or b) while (1) y = y + 1;\nendmodule\n")
    proc = subprocess.Popen([sys.executable, "-m", "axhw.cli", "add", str(path), "--time-limit", "120"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "err.txt", "w"))

    def simulators() -> list[str]:
        ps = subprocess.run(["ps", "-ww", "-eo", "stat,args"], capture_output=True, text=True).stdout
        return [line for line in ps.splitlines() if "vvp" in line and str(tmp_path) in line and not line.startswith("Z")]

    try:
        deadline = time.monotonic() + 60
        while not simulators() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert simulators(), f"the simulation never started: {(tmp_path / 'err.txt').read_text()}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    time.sleep(1)
    assert simulators() == []
