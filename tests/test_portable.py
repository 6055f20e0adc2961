"""Tests for xlainspect.runners.portable: source paths under a root made relative, nothing else touched."""

from __future__ import annotations

from xlainspect.runners.portable import portable_text

TEXT = '''HloModule m

FileNames
1 "/home/me/proj/train.py"
2 "/usr/lib/python3.12/runpy.py"
3 "/home/me/proj/model/layers.py"

ENTRY e {
  ROOT p = f32[] parameter(0), metadata={op_name="x" source_file="/home/me/proj/model/layers.py" source_line=3}
}
'''


def test_paths_under_the_root_become_relative_and_are_counted():
    text, root, count = portable_text(TEXT, ["/home/me/proj/model", "/home/me/proj"])
    assert (root, count) == ("/home/me/proj/model", 2)  # the first root that has paths, most specific first
    assert '"layers.py"' in text and '"/home/me/proj/train.py"' in text
    text, root, count = portable_text(TEXT, ["/home/me/proj"])
    assert (root, count) == ("/home/me/proj", 3)
    assert '1 "train.py"' in text and 'source_file="model/layers.py"' in text
    assert '"/usr/lib/python3.12/runpy.py"' in text  # outside the root: kept as it was


def test_a_root_that_only_prefixes_a_name_is_not_a_match():
    text, root, count = portable_text(TEXT, ["/home/me/pro"])
    assert (text, root, count) == (TEXT, None, 0)
