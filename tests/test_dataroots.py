"""Data roots and the upload store (fluxcore.dataroots): what the web app may read and keep."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fluxcore.dataroots import (
    DataRoot,
    UploadStore,
    data_roots,
    display_path,
    list_data_sources,
    new_session_id,
    public_message,
    resolve_server_path,
)
from fluxcore.errors import ConfigError, DataError


@pytest.fixture()
def root(tmp_path) -> DataRoot:
    r = tmp_path / "classdata"
    (r / "towers").mkdir(parents=True)
    (r / "towers" / "daily.parquet").write_bytes(b"x")
    (r / "towers" / "sites.csv").write_text("SITE_ID\nA\n")
    (r / "towers" / "dd").mkdir()
    (r / "towers" / "dd" / "FLX_XX-Aaa_FLUXNET2015_SUBSET_DD_2001-2002_1-4.csv").write_text("TIMESTAMP\n")
    (r / "extra").mkdir()
    (r / "extra" / "tidy.csv").write_text("SITE_ID,DATE,GPP\n")
    return DataRoot(r.resolve(), "classdata")


def _no_abs(text: str, *paths: Path) -> None:
    for p in paths:
        assert str(p) not in text and str(p.resolve()) not in text, text


# ------------------------------------------------------------------------------ roots
def test_defaults_and_env_var_adds_a_root(tmp_path):
    extra = tmp_path / "lesson"
    extra.mkdir()
    env = {"FLUXCORE_DATA_ROOTS": os.pathsep.join([str(extra), str(tmp_path / "missing"), str(extra)])}
    roots = data_roots(env)
    paths = [r.path for r in roots]
    assert paths.count(extra.resolve()) == 1 and tmp_path / "missing" not in paths
    assert roots[-1].label == "lesson"
    base = [r.path for r in data_roots({})]
    shared = (Path(__file__).resolve().parents[2] / "shared" / "data")
    assert (shared.resolve() in base) == shared.is_dir()
    assert extra.resolve() not in base
    # the env var makes a path below it readable
    (extra / "x.csv").write_text("a\n")
    assert resolve_server_path("lesson/x.csv", roots) == (extra / "x.csv").resolve()


def test_inside_root_resolves_relative_labelled_and_absolute(root):
    want = root.path / "towers"
    assert resolve_server_path("towers", [root]) == want
    assert resolve_server_path("classdata/towers", [root]) == want
    assert resolve_server_path(str(want), [root]) == want
    assert resolve_server_path(" towers/../towers ", [root]) == want


@pytest.mark.parametrize("text", ["/etc", "/etc/passwd", "../", "towers/../../", "../../../etc",
                                  "/", "~"])
def test_outside_root_refused_without_absolute_path(root, text):
    with pytest.raises(DataError, match="is not below a data folder") as e:
        resolve_server_path(text, [root])
    msg = str(e.value)
    _no_abs(msg, root.path, root.path.parent)
    assert "classdata" in msg  # names the roots by label
    assert text == "/" or not msg.startswith("/")
    assert "/etc" not in msg.replace("../etc", "")  # the name given, not a server path


def test_symlink_escape_refused(root, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "grades.csv").write_text("x\n")
    (root.path / "link").symlink_to(secret)
    (root.path / "file_link.csv").symlink_to(secret / "grades.csv")
    for text in ("link", "link/grades.csv", "file_link.csv", str(root.path / "link")):
        with pytest.raises(DataError, match="is not below a data folder") as e:
            resolve_server_path(text, [root])
        _no_abs(str(e.value), secret, root.path)
    # a link that stays inside the root is fine
    (root.path / "inner").symlink_to(root.path / "towers")
    assert resolve_server_path("inner", [root]) == root.path / "towers"
    assert all("secret" not in str(p) and "link" not in p.name for p in list_data_sources([root]))


def test_missing_path_inside_root_named_relative(root):
    with pytest.raises(DataError, match="does not exist") as e:
        resolve_server_path(str(root.path / "nope"), [root])
    assert str(e.value) == "classdata/nope: does not exist"


def test_empty_text_and_no_roots():
    with pytest.raises(DataError, match="give a data folder"):
        resolve_server_path("  ", [])
    with pytest.raises(DataError, match="no data folders"):
        resolve_server_path("x", [])


def test_display_path_and_list_sources(root, tmp_path):
    assert display_path(root.path / "towers", [root]) == "classdata/towers"
    assert display_path(root.path, [root]) == "classdata"
    assert display_path(tmp_path / "elsewhere" / "f.csv", [root]) == "f.csv"
    found = list_data_sources([root])
    assert [display_path(p, [root]) for p in found] == ["classdata/extra/tidy.csv", "classdata/towers",
                                                            "classdata/towers/dd"]
    limited = list_data_sources([root], limit=1)
    assert len(limited) == 1 and limited[0] in found


def test_public_message_has_no_server_path(root, tmp_path):
    upload = tmp_path / "uploads" / "abcdefgh1234" / "0123" / "my data.csv"
    text = (f"{upload}: missing column | {root.path / 'towers' / 'sites.csv'}: bad row | "
            f"cannot open '/var/lib/other/file.parquet' (see /tmp/x/y.log)")
    out = public_message(text, {upload: "my data.csv"}, [root])
    assert out.startswith("my data.csv: missing column")
    assert "classdata/towers/sites.csv: bad row" in out
    assert "'file.parquet'" in out and "y.log)" in out
    assert "/var" not in out and "/tmp" not in out and str(tmp_path) not in out
    # units and ratios are no paths
    assert public_message("GPP [gC m-2 d-1], P / PET, a/b", {}, []) == "GPP [gC m-2 d-1], P / PET, a/b"


# ------------------------------------------------------------------------------ uploads
def _store(tmp_path, **kw) -> UploadStore:
    return UploadStore(base=(tmp_path / "uploads").resolve(), **kw)


def test_save_per_session_with_user_name(tmp_path):
    store = _store(tmp_path)
    a, b = new_session_id(), new_session_id()
    assert a != b
    pa = store.save(a, "../../My Data.csv", b"SITE_ID,DATE,GPP\n")
    pb = store.save(b, "My Data.csv", b"SITE_ID,DATE,GPP\n")
    assert pa.parent.parent == store.base / a and pb.parent.parent == store.base / b
    assert pa.name == "My_Data.csv" and pa.read_bytes() == b"SITE_ID,DATE,GPP\n"
    assert store.contains(pa) and not store.contains(tmp_path / "other.csv")
    # the same content is stored once
    assert store.save(a, "My Data.csv", b"SITE_ID,DATE,GPP\n") == pa
    with pytest.raises(ValueError):
        store.session_dir("../x")


def test_size_limit_refuses_before_writing(tmp_path):
    store = _store(tmp_path, max_mb=0.001)  # 1048 bytes
    sid = new_session_id()
    store.save(sid, "small.csv", b"x" * 1000)
    with pytest.raises(DataError, match=r"big.csv: the file is .* more than the upload limit of 0.001 MB"):
        store.save(sid, "big.csv", b"x" * 2000)
    assert not list(store.base.rglob("big*"))
    with pytest.raises(DataError, match="unsupported file type"):
        store.save(sid, "notes.txt", b"x")


def test_rejected_upload_removed(tmp_path):
    store = _store(tmp_path)
    sid = new_session_id()
    keep = store.save(sid, "good.csv", b"good")
    bad = store.save(sid, "bad.csv", b"bad")
    outside = tmp_path / "outside.csv"
    outside.write_text("x")
    store.discard(bad, outside, None)
    assert not bad.exists() and not bad.parent.exists()  # its content folder too
    assert keep.exists() and outside.exists()


def test_cleanup_removes_old_session_folders_only(tmp_path):
    store = _store(tmp_path, max_age_hours=24)
    old, new = new_session_id(), new_session_id()
    p_old = store.save(old, "a.csv", b"a")
    p_new = store.save(new, "b.csv", b"b")
    other = store.base / "README"  # not a session folder
    other.write_text("keep")
    odd = store.base / "x"  # too short for a session id
    odd.mkdir()
    now = time.time()
    past = now - 25 * 3600
    for p in [p_old, p_old.parent, store.base / old, odd, other]:
        os.utime(p, (past, past))
    assert store.cleanup(now=now) == [old]
    assert not (store.base / old).exists()
    assert p_new.exists() and other.exists() and odd.exists()
    # a folder with one recent file is in use
    p_old2 = store.save(old, "a.csv", b"a")
    os.utime(store.base / old, (past, past))
    assert store.cleanup(now=now) == [] and p_old2.exists()


def test_from_env_limits_and_folder(tmp_path):
    env = {"FLUXCORE_RUNS_DIR": str(tmp_path / "runs"), "FLUXCORE_UPLOAD_MAX_MB": "5",
           "FLUXCORE_UPLOAD_MAX_AGE_HOURS": "0.5"}
    s = UploadStore.from_env(env=env)
    assert s.base == (tmp_path / "runs" / "_uploads").resolve() and s.max_mb == 5 and s.max_age_hours == 0.5
    assert s.max_bytes == 5 * 2**20
    s = UploadStore.from_env(env={**env, "FLUXCORE_UPLOADS_DIR": str(tmp_path / "up")})
    assert s.base == (tmp_path / "up").resolve()
    d = UploadStore.from_env(env={})
    assert d.max_mb == 200 and d.max_age_hours == 24
    for bad in ("x", "0", "-1", "inf"):
        with pytest.raises(ConfigError, match="FLUXCORE_UPLOAD_MAX_AGE_HOURS must be a"):
            UploadStore.from_env(env={"FLUXCORE_UPLOAD_MAX_AGE_HOURS": bad})


def test_public_message_replaces_the_command_line_hint():
    for text in ("x.csv: no site column; name them in the column map (--columns their_name=SITE_ID,...)",
                 "x.csv: none of GPP, ER, NEE; map yours with --columns their_name=GPP"):
        out = public_message(text, {}, [])
        assert "--columns" not in out and "their_name" not in out
        assert out.endswith("; match them to fluxcore's names in the column selection of an upload")
