"""Reads stand-in ONNX files with the onnx package (independent of our protobuf writer) and reports what a
consumer sees: ir_version, opsets, graph inputs/outputs (name, element type, dims), op types, external data
locations; runs onnx.checker.check_model(full_check=True) (structure + shape inference) on each.

    /usr/bin/python3 onnx_check.py MODEL.onnx [MODEL.onnx ...]   → JSON list on stdout
"""
import json
import sys

import onnx
from onnx import TensorProto


def dims(vi):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in vi.type.tensor_type.shape.dim]


def report(path):
    model = onnx.load(path, load_external_data=False)
    onnx.checker.check_model(path, full_check=True)
    g = model.graph
    locations = sorted({
        e.value
        for t in g.initializer
        if t.data_location == TensorProto.EXTERNAL
        for e in t.external_data
        if e.key == "location"
    })
    return {
        "path": path,
        "ir_version": model.ir_version,
        "opsets": {o.domain: o.version for o in model.opset_import},
        "inputs": [[i.name, TensorProto.DataType.Name(i.type.tensor_type.elem_type), dims(i)] for i in g.input],
        "outputs": [[o.name, TensorProto.DataType.Name(o.type.tensor_type.elem_type), dims(o)] for o in g.output],
        "op_types": sorted({n.op_type for n in g.node}),
        "node_domains": sorted({n.domain for n in g.node}),
        "external_locations": locations,
        "initializers": len(g.initializer),
    }


if __name__ == "__main__":
    print(json.dumps([report(p) for p in sys.argv[1:]]))
