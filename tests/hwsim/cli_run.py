"""Running the `hwsim` command in-process and checking the bad-input contract (shared by the CLI tests)."""

from hwsim.cli import main


def run_cli(*args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_bad_input(code, err, *fragments):
    """Exit code 2, exactly one line on stderr naming every fragment, no traceback."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]
