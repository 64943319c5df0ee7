import torch

from spense.runtime.shapes import bucket, device_index, pad_to


def test_bucket_and_pad_to():
    assert [bucket(m) for m in (0, 1, 2, 3, 8, 9, 64, 65)] == [1, 1, 2, 4, 8, 16, 64, 128]
    assert pad_to(65, 64) == 128 and pad_to(64, 64) == 64


def test_device_index_keys_per_device_state():
    assert device_index(torch.device("cpu")) == 0
    assert device_index(torch.device("cuda", 3)) == 3  # an explicit index is taken as it is (no CUDA query)
    assert device_index(torch.device("meta")) == 0
