"""flywheel.agree: reading ratings files (wide/long, JSONL/CSV/Parquet) and the text report."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel import agree
from flywheel.errors import InputError
from flywheel.stats import Ratings, summarize

LESSON = Path(__file__).parent / "data" / "lesson.jsonl"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_lesson_is_wide_with_label_columns() -> None:
    ratings = agree.load_ratings(LESSON)
    assert ratings.annotators == ("a", "b")
    assert ratings.items == ("1", "2", "3", "4", "5")
    assert ratings.labels == ("bad", "good")
    assert ratings.codes.tolist() == [[1, 1], [0, 0], [0, 1], [1, 1], [1, 0]]


def test_format_text_starts_with_agreement_and_kappa() -> None:
    text = agree.format_text(summarize(agree.load_ratings(LESSON), bootstrap=100, seed=0))
    lines = text.splitlines()
    assert lines[:2] == ["agreement = 0.6", "kappa = 0.167"]
    assert "Krippendorff's alpha (nominal) = 0.25" in lines
    assert "95% bootstrap intervals (100 item resamples, seed 0):" in lines
    assert (
        "  bad / good: 2 disagreeing rating pairs on 2 items (100% of disagreements), "
        "e.g. items 3, 5" in lines
    )


def test_format_text_says_undefined_and_the_paradox() -> None:
    same = Ratings.from_wide(["1", "2"], {"a": ["ok", "ok"], "b": ["ok", "ok"]})
    lines = agree.format_text(summarize(same, bootstrap=0)).splitlines()
    assert lines[:2] == [
        "agreement = 1.0",
        "kappa = undefined (every rating compared is 'ok', so chance agreement is 1 "
        "and Cohen's kappa is 0/0.)",
    ]
    a = ["ok"] * 90 + ["bad"] * 5 + ["ok"] * 5
    b = ["ok"] * 95 + ["bad"] * 5
    skewed = Ratings.from_wide([str(i) for i in range(100)], {"a": a, "b": b})
    text = agree.format_text(summarize(skewed, bootstrap=0))
    assert "note: agreement is high but kappa is low because 'ok' is 95% of the ratings" in text


def test_format_text_with_guidelines_and_many_annotators() -> None:
    ratings = Ratings.from_wide(
        ["1", "2", "3"], {"a": ["x", "y", "x"], "b": ["y", "y", "x"], "c": ["x", "x", "x"]}
    )
    report = summarize(ratings, bootstrap=0, boundary_pairs={frozenset({"x", "y"}): ["why"]})
    lines = agree.format_text(report).splitlines()
    assert lines[1].startswith("kappa = ")
    assert lines[1].endswith("(Fleiss, 3 annotators)")
    assert any(line.endswith("the guidelines have 1 boundary example") for line in lines)


def test_long_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "doc,who,grade\nd1,ann,1\nd1,bob,2\nd2,ann,-3\nd1,ann,2\n")
    ratings = agree.load_ratings(path, item="doc", annotator="who", label="grade")
    assert ratings.labels == ("-3", "1", "2")
    assert ratings.annotators == ("ann", "bob")
    assert ratings.codes.tolist() == [[2, 2], [0, -1]]
    assert ratings.repeats == 1


def test_long_by_column_names(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.jsonl",
        '{"item": 1, "annotator": "a", "label": 3}\n{"item": 1, "annotator": "b", "label": 4}\n',
    )
    ratings = agree.load_ratings(path)
    assert ratings.items == ("1",)
    assert ratings.labels == ("3", "4")


def test_wide_explicit_columns_and_id(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "key,first,second,label_x\nk1,a,,a\nk2,b,b,a\n")
    ratings = agree.load_ratings(path, annotators=["first", "second"], id_column="key")
    assert ratings.annotators == ("first", "second")
    assert ratings.codes.tolist() == [[0, -1], [1, 1]]


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"id": [1, 2], "label_a": ["x", None], "label_b": ["x", "y"]}), path)
    ratings = agree.load_ratings(path)
    assert ratings.codes.tolist() == [[0, 0], [-1, 1]]


def test_label_order(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "id,label_a,label_b\n1,low,high\n2,mid,mid\n")
    ratings = agree.load_ratings(path, label_order=["low", "mid", "high"])
    assert ratings.labels == ("low", "mid", "high")


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        (
            "data.csv",
            "id,text,label_a\n1,hi,x\n",
            {"annotators": ["label_x"]},
            "data.csv has no column 'label_x'; columns are: id, text, label_a; "
            "pass --annotators COL.",
        ),
        (
            "data.csv",
            "doc,who,lab\n1,a,x\n",
            {"item": "doc", "annotator": "who", "label": "label"},
            "data.csv has no column 'label'; columns are: doc, who, lab; pass --label COL.",
        ),
        (
            "data.csv",
            "key,label_a\n1,x\n",
            {},
            "data.csv has no column 'id'; columns are: key, label_a; pass --id COL.",
        ),
        (
            "data.csv",
            "id,text\n1,hi\n",
            {},
            "data.csv has no label_<annotator> columns and no item, annotator and label columns; "
            "columns are: id, text; pass --annotators COL,COL for one label column per annotator, "
            "or --item, --annotator and --label for one row per rating.",
        ),
        (
            "data.csv",
            "id,label_a\n1,x\n,y\n",
            {},
            "data.csv row 2 (line 3, after the header) has no value in column 'id'; "
            "every row needs an item id.",
        ),
        (
            "data.jsonl",
            '{"item": "i", "annotator": "a", "label": "x"}\n'
            '{"item": "j", "annotator": null, "label": "x"}\n',
            {},
            "data.jsonl line 2 has no value in column 'annotator'; every row needs an annotator.",
        ),
        (
            "data.csv",
            "id,label_a\n",
            {},
            "data.csv has no rows. Check that it is the right file.",
        ),
        (
            "data.csv",
            "id,label_a\n1,x\n",
            {"item": "id", "label": "label_a"},
            "Reading data.csv as one row per rating needs --item, --annotator and --label; "
            "also pass --annotator.",
        ),
        (
            "data.csv",
            "id,label_a\n1,x\n",
            {"item": "id", "annotators": ["label_a"]},
            "Pass either --annotators (one label column per annotator) or --item, --annotator and "
            "--label (one row per rating) for data.csv, not both.",
        ),
        (
            "data.txt",
            "id,label_a\n",
            {},
            "data.txt is not a JSONL, CSV or Parquet file: its extension '.txt' is none of .jsonl, "
            ".csv, .tsv or .parquet. Rename or convert the file.",
        ),
        (
            "data.jsonl",
            '{"id": 1, "label_a": {"nested": true}}\n',
            {},
            "data.jsonl column 'label_a' holds struct<nested: bool> values, not labels or ids; "
            "give it text or numbers.",
        ),
    ],
)
def test_input_errors_name_the_file_and_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: str,
    kwargs: dict[str, object],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / name, content)
    with pytest.raises(InputError) as info:
        agree.load_ratings(Path(name), **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_unreadable_and_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        InputError, match=r"^nope\.csv does not exist or is not a file\. Check the path\.$"
    ):
        agree.load_ratings(Path("nope.csv"))
    write(tmp_path / "bad.jsonl", '{"id": 1, "label_a": "x"}\n{"id": 2, "label_a": 3}\n')
    with pytest.raises(
        InputError, match=r"^bad\.jsonl cannot be read as JSONL: .+\. Fix or convert the file\.$"
    ):
        agree.load_ratings(Path("bad.jsonl"))


def test_report_of_loaded_file_round_trips_through_json() -> None:
    report = summarize(agree.load_ratings(LESSON), bootstrap=20)
    text = json.dumps(report.to_dict(), indent=2, sort_keys=True)
    assert json.loads(text)["cohen_kappa"]["value"] == 0.166667
