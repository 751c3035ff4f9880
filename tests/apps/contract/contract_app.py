"""Every public name of mlbundle_runtime, exercised the way an application would; prints
one JSON object. tests/test_own_app.py runs it from source against a prepared payload
and frozen, and the two outputs must be the same."""

import json
import os
import sys
import tempfile

import mlbundle_runtime as rt

RECORD = {
    "island": "Biscoe",
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "sex": "male",
}


def main() -> int:
    model = rt.load()
    one = model.predict(RECORD)
    rows = [RECORD, dict(RECORD, island="Dream", bill_length_mm=49.0, sex=None)]
    many = model.predict_many(rows)
    by_column = model.predict_many({k: [r[k] for r in rows] for k in RECORD})
    out = {
        "all": sorted(rt.__all__),
        "version": rt.__version__,
        "types": [
            isinstance(model, rt.Model),
            isinstance(one, rt.Prediction),
            isinstance(many, rt.Predictions),
            isinstance(model.inputs[0], rt.Input),
            isinstance(model.outputs, rt.Outputs),
            isinstance(model.selftest(), rt.GateResult),
        ],
        "predict": [one.label, one.probabilities, one.value, one.extras, one.to_dict()],
        "many": [
            many.labels,
            many.probabilities.tolist(),
            list(many.classes),
            len(many),
            many[1].to_dict(),
            [p.label for p in many],
            many.to_records(),
        ],
        "columns_agree": by_column.to_records() == many.to_records(),
        "inputs": [
            [i.name, i.kind, list(i.categories), i.training_range, i.unit, i.description]
            for i in model.inputs
        ],
        "outputs": [
            model.outputs.task,
            list(model.outputs.classes),
            list(model.outputs.columns),
            model.outputs.consume,
        ],
        "model": [
            model.name,
            model.version,
            model.approved,
            model.info["name"],
            model.record["model"]["sha256"],
        ],
        "selftest": [model.selftest().passed, model.selftest().summary()[0]],
    }
    try:
        model.predict(dict(RECORD, island=3))
    except rt.InputError as exc:
        out["input_error"] = str(exc)
    try:
        rt.load(os.path.join(tempfile.gettempdir(), "no-such-payload"))
    except rt.BundleError as exc:
        out["bundle_error"] = type(exc).__name__
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.csv"), os.path.join(tmp, "out.csv")
        with open(src, "w", encoding="utf-8") as f:
            f.write(",".join(RECORD) + "\n" + ",".join(str(v) for v in RECORD.values()) + "\n")
        rows_scored = model.predict_csv(src, dst)
        with open(dst, encoding="utf-8") as f:
            out["predict_csv"] = [rows_scored, f.read()]
    json.dump(out, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
