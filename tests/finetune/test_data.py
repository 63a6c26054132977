import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finetune.data import DatasetError, dataset_fingerprint, load_split, split_files
from tests.finetune.fixture_data import MESSAGES, write_sft_dataset


def test_reads_only_messages_of_the_pipeline_layout(sft_dir):
    train = load_split(sft_dir, "train")
    assert train.column_names == ["messages"]
    assert len(train) == 12 and len(load_split(sft_dir, "test")) == 4
    roles = {turn["role"] for chat in train["messages"] for turn in chat}
    assert roles == {"system", "user", "assistant", "tool"}
    first = train[0]["messages"]
    assert [t["role"] for t in first] == ["system", "user", "assistant", "user", "assistant"]
    assert first[3]["content"].startswith("Execution result:")


def test_hub_layout(tmp_path):
    write_sft_dataset(tmp_path, train=3, test=0, hub_layout=True)
    assert [p.name for p in split_files(tmp_path, "train")] == ["train-00000-of-00001.parquet"]
    assert len(load_split(tmp_path, "train")) == 3
    assert load_split(tmp_path, "test", required=False) is None
    with pytest.raises(DatasetError, match="no test.parquet nor data/test-"):
        load_split(tmp_path, "test")


def test_fingerprint_follows_the_bytes(tmp_path):
    a = write_sft_dataset(tmp_path / "a", train=3, test=1)
    b = write_sft_dataset(tmp_path / "b", train=3, test=1)
    c = write_sft_dataset(tmp_path / "c", train=4, test=1)
    assert dataset_fingerprint(a) == dataset_fingerprint(b) != dataset_fingerprint(c)
    assert len(dataset_fingerprint(a)) == 64


@pytest.mark.parametrize("messages, expected", [
    ([{"role": "narrator", "content": "x"}, {"role": "assistant", "content": "y"}], "role 'narrator' is not one of"),
    ([{"role": "user", "content": "x"}], "no assistant turn"),
    ([], "empty `messages`"),
])
def test_bad_rows_name_file_and_row(tmp_path, messages, expected):
    table = pa.Table.from_pylist([{"messages": messages}], schema=pa.schema([("messages", MESSAGES)]))
    pq.write_table(table, tmp_path / "train.parquet")
    with pytest.raises(DatasetError, match=rf"train.parquet row 0: {expected}"):
        load_split(tmp_path, "train")
