"""CKKS aggregation: the sum equals plaintext FedAvg; the public context cannot decrypt."""

import numpy as np
import pytest

pytest.importorskip("tenseal")

from client.privacy import he  # noqa: E402
from common.errors import EncryptionError  # noqa: E402
from common.models import build_model  # noqa: E402
from server.he_aggregation import load_public_context, weighted_sum  # noqa: E402


@pytest.fixture(scope="module")
def secret():
    return he.make_secret_context()


def _flat(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.state_dict().values()])


@pytest.mark.parametrize(("name", "features", "classes"), [("mlp", 13, 2), ("cnn", 64, 10)])
def test_encrypted_fedavg_matches_plaintext(secret, name, features, classes):
    vectors = [_flat(build_model(name, features, classes, seed=s)) for s in range(3)]
    counts = [30.0, 50.0, 20.0]
    public = load_public_context(he.public_bytes(secret))
    agg = weighted_sum(
        public, [(he.encrypt(secret, v), c) for v, c in zip(vectors, counts, strict=True)]
    )
    expected = np.average(np.stack(vectors), axis=0, weights=counts)
    got = he.decrypt(secret, agg)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < 1e-4


def test_public_context_cannot_decrypt(secret):
    public = load_public_context(he.public_bytes(secret))
    assert not public.has_secret_key()
    chunks = he.encrypt(secret, np.arange(5.0))
    with pytest.raises(EncryptionError):
        he.decrypt(public, chunks)
    with pytest.raises(ValueError, match="secret"):
        import tenseal as ts

        ts.ckks_vector_from(public, chunks[0]).decrypt()


def test_coordinator_refuses_secret_context_and_tampered_ciphertext(secret):
    with pytest.raises(EncryptionError, match="secret key"):
        load_public_context(secret.serialize(save_secret_key=True))
    with pytest.raises(EncryptionError, match="no secret key"):
        he.load_context(he.public_bytes(secret), need_secret=True)
    public = load_public_context(he.public_bytes(secret))
    good = he.encrypt(secret, np.ones(4))
    with pytest.raises(EncryptionError, match="tampered"):
        weighted_sum(public, [(good, 1.0), ([b"\x00garbage" + good[0][:50]], 1.0)])


def test_a_process_loads_one_key_once_whatever_folder_holds_it(tmp_path):
    """Virtual sites share a worker and a key: the context is loaded once per content
    (each load ~50 ms), and a re-provisioned file is loaded anew."""
    from common.he_keys import provision

    provision([tmp_path / "a", tmp_path / "b"], tmp_path / "coordinator")
    first, key = he.site_context(tmp_path / "a")
    assert he.site_context(tmp_path / "b") == (first, key)
    provision([tmp_path / "b"], tmp_path / "elsewhere")
    other, other_key = he.site_context(tmp_path / "b")
    assert other is not first and other_key != key
