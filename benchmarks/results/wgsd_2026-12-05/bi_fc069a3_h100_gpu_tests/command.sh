# forty-fourth stop, call 7 (same machine), at fc069a3:
export PYTHONPATH=src PYTHONUNBUFFERED=1; mkdir -p $OUT/bi; timeout 300 python -m pytest -q -x tests/test_attention.py -k "gpu" -p no:cacheprovider 2>&1 | tail -5 | tee $OUT/bi/pytest.txt
