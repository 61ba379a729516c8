"""The paper's rows are defined once (tf_ada/rows.py, issue 14): the experiments, the reports and the
stacks all read them, and each built experiment is what its row says."""
import pytest

from reproduce import paper
from tf_ada import configs, rows, stacks


@pytest.mark.parametrize("row", sorted(rows.TABLE1))
def test_table1_experiments_are_their_rows(row):
    spec = rows.TABLE1[row]
    model = configs.table1_row(row, "paper").model
    assert spec.input_kind in configs.INPUT_KINDS
    if spec.quantizer is None:
        assert not hasattr(model, "quantizer") and model.input_kind == spec.input_kind
    else:
        assert (model.quantizer, model.hop, model.encoder.input_kind, model.local.input_kind) == \
            (spec.quantizer, spec.hop, spec.input_kind, spec.input_kind)
    assert paper.TABLE1[row]["eval_nll"] == spec.eval_nll and paper.TABLE1[row]["input"] == spec.input_kind


@pytest.mark.parametrize("row", sorted({**rows.TABLE2, **rows.TABLE2_VARIANTS}))
def test_table2_experiments_are_their_rows(row):
    spec = {**rows.TABLE2, **rows.TABLE2_VARIANTS}[row]
    model = configs.table2_row(row, "paper").model
    if spec.quantizer is None:
        assert model.input_kind == "one_hot" and model.n_input_classes == 256
    else:
        assert (model.quantizer, model.hop) == (spec.quantizer, spec.hop)
        # the paper gives the decoder RF; ours is computed from the built local model
        assert configs.decoder_receptive_field(model) == spec.decoder_rf
    assert (row in paper.TABLE2) == spec.is_paper_row


def test_table3_stacks_are_their_rows():
    assert list(stacks.PAPER_TABLE3) == list(rows.TABLE3)
    for row, spec in rows.TABLE3.items():
        assert stacks.PAPER_TABLE3[row] == (spec.description, spec.n_levels, spec.receptive_field_ms)
        assert len(stacks.stack(row, "paper").levels) == spec.n_levels


def test_unknown_rows_name_the_rows_that_exist():
    with pytest.raises(ValueError, match=r"Table 1 has rows .*1\.7.*not '1\.8'"):
        configs.table1_row("1.8")
    with pytest.raises(ValueError, match="Table 2 has rows"):
        configs.table2_row("2.9")
