"""Shared by the bench scripts: print a results table and keep it on disk."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def publish(name, title, table):
    """Prints `table` and writes it to bench/results/NAME.md atomically."""
    print(table)
    results = os.path.join(ROOT, "bench", "results")
    os.makedirs(results, exist_ok=True)
    path = os.path.join(results, name + ".md")
    with open(path + ".tmp", "w") as f:
        f.write(f"# {title}\n\n{table}\n")
    os.replace(path + ".tmp", path)  # a reader never sees half a file
    print(f"\nwritten to {os.path.relpath(path, ROOT)}")
