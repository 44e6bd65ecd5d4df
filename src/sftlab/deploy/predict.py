"""``predict(cfg) -> Path``: batch inference on a file with a run's exported model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from sftlab.data.chat import generation_prompt, is_missing, parse_messages
from sftlab.data.tables import first_row, read_table, write_table
from sftlab.deploy.loading import load
from sftlab.inference.frames import check_task, predict_frame
from sftlab.inference.predictor import require
from sftlab.utils.cli import stopped_line
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)

# the output is written whole or not at all (write_table goes through a temp name)
predict_stopped = stopped_line("predict.py", "no output written; run it again")


def default_output(input_path: Path) -> Path:
    """``reviews.csv`` -> ``reviews.preds.csv`` next to it."""
    return input_path.with_name(f"{input_path.stem}.preds{input_path.suffix}")


def predict(cfg: Any) -> Path:
    """Read ``cfg.input``, add the predictions, write ``cfg.output``; return the output path."""
    require(cfg, ("run", "input"), "python predict.py run=<run dir or model folder> input=<file>")
    inp = Path(str(cfg.input))
    out = Path(str(cfg.output)) if cfg.get("output") else default_output(inp)
    if out.resolve() == inp.resolve():
        raise SftlabError(f"output={out} would overwrite the input: choose another output path")
    predictor = load(cfg)
    check_task(predictor)
    df = read_table(inp, str(cfg.get("encoding") or "utf-8"), key="input")  # as training reads
    first = first_row(inp)  # row numbers as in training's messages
    generation = predictor.task == "generation"
    messages = predictor.meta.get("messages_column") if generation else None
    if messages and not cfg.get("text_column"):  # chat rows, as in training
        if messages not in df.columns:
            raise SftlabError(
                f"{inp} has no messages column '{messages}' that the run was trained on "
                f"(columns: {', '.join(map(str, df.columns))}): add it or set text_column=<prompts>"
            )
        empty = [i for i, value in enumerate(df[messages]) if is_missing(value)]
        if empty:
            log.warning(
                "%s: %d rows have no messages (first: row %d); replying to an empty user turn",
                inp,
                len(empty),
                empty[0] + first,
            )
        texts = [
            [{"role": "user", "content": ""}]
            if is_missing(value)
            else generation_prompt(parse_messages(value, f"{inp}, row {i + first}"))
            for i, value in enumerate(df[messages])
        ]
        return _finish(cfg, df, texts, predictor, inp, out)
    template = predictor.meta.get("prompt_template") if generation else None
    if template and not cfg.get("text_column"):  # prompts made from each row, as in training
        try:
            texts = [template.format(**row) for row in df.to_dict("records")]
        except KeyError as e:
            raise SftlabError(
                f"{inp} has no column {e} that the run's prompt_template '{template}' needs "
                f"(columns: {', '.join(map(str, df.columns))})"
            ) from None
        return _finish(cfg, df, texts, predictor, inp, out)
    column = str(cfg.get("text_column") or predictor.text_column)
    if column not in df.columns:
        raise SftlabError(
            f"{inp} has no text column '{column}' (columns: {', '.join(map(str, df.columns))}): "
            f"set text_column=<one of them>"
        )
    texts = df[column]
    missing = texts.isna()
    if missing.any():
        log.warning(
            "%s: %d rows have no text (first: row %d); predicting on ''",
            inp,
            int(missing.sum()),
            int(missing.idxmax()) + first,
        )
    texts = texts.where(~missing, "").astype(str).tolist()
    return _finish(cfg, df, texts, predictor, inp, out)


def _finish(cfg: Any, df: pd.DataFrame, texts: list[str], predictor, inp: Path, out: Path) -> Path:
    """Predict ``texts`` and write the input rows plus the prediction columns to ``out``."""
    preds = predict_frame(
        predictor,
        texts,
        batch_size=int(cfg.get("batch_size", 64)),
        progress=bool(cfg.get("progress", True)),
    )
    clash = [c for c in preds.columns if c in df.columns]
    if clash:
        log.warning("%s already has columns %s: they are replaced by the predictions", inp, clash)
    result = pd.concat([df.drop(columns=clash).reset_index(drop=True), preds], axis=1)
    write_table(result, out)
    log.info("wrote %d predictions to %s", len(result), out)
    return out
