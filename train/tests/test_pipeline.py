"""train/ is a pipeline: every module imports only modules of its own or an earlier layer, nothing imports the
driver or the fixture tools, and the import graph (top-level and in-function imports alike) has no cycle.

Run: /usr/bin/python3 -m unittest discover -s train/tests
"""
import ast
import os
import unittest

TRAIN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Layer of every module under train/ (the order of the stages in train_all.py); c2c/ is one shared package.
LAYERS = ["shared", "world", "lm", "fuser", "eval", "report", "driver"]
MODULES = {
    "common": "shared", "st": "shared", "bpe": "shared", "qwen3": "shared", "infer": "shared", "align": "shared",
    "export": "shared", "c2c": "shared",
    "world": "world",
    "train_lm": "lm", "node_check": "lm",
    "train_fuser": "fuser", "train_hetero": "fuser",
    "evaluate": "eval",
    "golden": "report", "report": "report",
    "train_all": "driver", "retrain_check": "driver",
}
# Stand-alone fixture generators: they may use only shared modules, and nothing imports them.
TOOLS = {"make_golden_fuser", "make_official_checkpoints"}


def module_files():
    """Module name -> source files (the c2c package counts as one module)."""
    files = {f[:-3]: [os.path.join(TRAIN, f)] for f in os.listdir(TRAIN) if f.endswith(".py")}
    pkg = os.path.join(TRAIN, "c2c")
    files["c2c"] = [os.path.join(pkg, f) for f in sorted(os.listdir(pkg)) if f.endswith(".py")]
    return files


def local_imports(paths, local):
    """Names of local modules imported anywhere in these files (relative imports stay inside a package)."""
    found = set()
    for path in paths:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found & local


def import_graph():
    files = module_files()
    return {m: sorted(local_imports(paths, set(files)) - {m}) for m, paths in files.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in graph[m]:
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                c = visit(d)
                if c:
                    return c
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            c = visit(m)
            if c:
                return c
    return None


class TestPipeline(unittest.TestCase):
    def test_every_module_has_a_layer(self):
        self.assertEqual(set(module_files()), set(MODULES) | TOOLS)

    def test_imports_point_to_earlier_layers_only(self):
        bad = []
        for m, deps in import_graph().items():
            for d in deps:
                if d in TOOLS or d == "train_all":
                    bad.append(f"{m} imports {d} (driver/tool)")
                elif m in TOOLS:
                    if MODULES[d] != "shared":
                        bad.append(f"tool {m} imports {d} ({MODULES[d]})")
                elif LAYERS.index(MODULES[d]) > LAYERS.index(MODULES[m]):
                    bad.append(f"{m} ({MODULES[m]}) imports {d} ({MODULES[d]})")
        self.assertEqual(bad, [])

    def test_no_import_cycle(self):
        self.assertIsNone(find_cycle(import_graph()))


if __name__ == "__main__":
    unittest.main()
