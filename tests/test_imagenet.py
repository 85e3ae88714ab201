"""The shipped ImageNet class index and top-k decoding."""

import hashlib
import math

import numpy as np
import pytest

from helpers import imagenet
from helpers.errors import ClassIndexError, HelpersError
from helpers.imagenet import (
    CLASS_INDEX_MD5,
    CLASS_INDEX_PATH,
    Prediction,
    class_index,
    class_index_of,
    class_names,
    decode_predictions,
    pretty,
)


def test_shipped_file_is_keras_file_byte_for_byte():
    digest = hashlib.md5(CLASS_INDEX_PATH.read_bytes()).hexdigest()
    assert digest == CLASS_INDEX_MD5 == "c2c37ea517e94d9795004a39431a14cb"


def test_names_and_wnids():
    names = class_names()
    assert len(names) == 1000
    assert sorted(class_index()) == list(range(1000))
    assert names[0] == "tench"
    assert names[281] == "tabby"
    assert names[282] == "tiger_cat"
    assert names[243] == "bull_mastiff"
    assert class_index()[282] == ("n02123159", "tiger_cat")
    # Keras's names really do repeat: keep both, look up by index.
    assert names[134] == names[517] == "crane"
    assert names[638] == names[639] == "maillot"


def test_pretty():
    assert pretty("tiger_cat") == "tiger cat"
    assert pretty("jack-o'-lantern") == "jack-o'-lantern"


def test_decode_from_logits_order_and_values():
    logits = np.zeros(1000, dtype=np.float32)
    logits[282], logits[281], logits[243] = 5.0, 4.0, 3.0
    preds = decode_predictions(logits, top=3)
    assert [p.index for p in preds] == [282, 281, 243]
    assert [p.name for p in preds] == ["tiger_cat", "tabby", "bull_mastiff"]
    assert preds[0].wnid == "n02123159"
    denom = math.exp(5) + math.exp(4) + math.exp(3) + 997
    for p, z in zip(preds, [5.0, 4.0, 3.0]):
        assert p.probability == pytest.approx(math.exp(z) / denom, rel=1e-9)
    assert sum(p.probability for p in preds) <= 1.0
    assert all(isinstance(p, Prediction) for p in preds)


def test_decode_is_stable_for_huge_logits_and_accepts_batch_of_one():
    logits = np.full((1, 1000), -1000.0)
    logits[0, 7] = 1000.0
    logits[0, 8] = 999.0
    preds = decode_predictions(logits, top=2)
    assert [p.index for p in preds] == [7, 8]
    assert preds[0].probability == pytest.approx(1 / (1 + math.exp(-1)))
    assert all(math.isfinite(p.probability) for p in preds)


def test_decode_from_probabilities_is_not_softmaxed_again():
    probs = np.zeros(1000)
    probs[[1, 2, 3]] = [0.2, 0.5, 0.3]
    preds = decode_predictions(probs, top=3, from_logits=False)
    assert [(p.index, p.probability) for p in preds] == [(2, 0.5), (3, 0.3), (1, 0.2)]


@pytest.mark.parametrize("bad", [np.zeros(10), np.zeros((2, 1000)), np.zeros((1, 1, 1000))])
def test_decode_rejects_wrong_shapes(bad):
    with pytest.raises(ValueError, match="one image"):
        decode_predictions(bad)


def test_decode_rejects_bad_top_and_nan():
    with pytest.raises(ValueError, match="top"):
        decode_predictions(np.zeros(1000), top=0)
    with pytest.raises(ValueError, match="NaN"):
        decode_predictions(np.full(1000, np.nan))


@pytest.mark.parametrize("query", ["tiger cat", "tiger_cat", "Tiger Cat", "  TIGER_cat ", 282, np.int64(282)])
def test_class_index_of_accepts_names_and_indices(query):
    assert class_index_of(query) == 282


def test_class_index_of_hyphens_and_apostrophes():
    assert class_index_of("jack-o'-lantern") == 607
    assert class_index_of("Jack_o'_lantern") == 607


@pytest.mark.parametrize(
    ("name", "indices", "meanings"),
    [
        ("crane", (134, 517), ("the bird", "the machine")),
        ("Maillot", (638, 639), ("n03710637", "n03710721")),
        ("CARDIGAN", (264, 474), ("corgi", "sweater")),  # no exact case: ambiguous too
    ],
)
def test_ambiguous_names_are_refused_with_every_index(name, indices, meanings):
    # before: the name silently meant its first class (crane -> 134, the bird, never the machine)
    with pytest.raises(ClassIndexError) as info:
        class_index_of(name)
    message = str(info.value)
    assert message.startswith(f"{name!r} is ambiguous in ImageNet: {indices[0]} (")
    assert f" or {indices[1]} (" in message and message.endswith("; pass the index")
    assert all(meaning in message for meaning in meanings)


def test_exact_case_tells_same_named_classes_apart():
    assert class_index_of("Cardigan") == 264  # Cardigan Welsh corgi
    assert class_index_of("cardigan") == 474  # the sweater
    assert class_index_of(" Cardigan ") == 264
    assert class_names()[264] == "Cardigan" and class_names()[474] == "cardigan"


def test_classifier_lookup_is_the_same_function():
    from helpers.models import Classifier

    classifier = Classifier("toy", None, None, (8, 8), "conv", ("Cat", "cat", "dog_bone", "crane", "crane"))
    assert classifier.class_index("Cat") == 0 and classifier.class_index("cat") == 1
    assert classifier.class_index("Dog-Bone") == 2
    with pytest.raises(ClassIndexError, match=r"^'crane' is ambiguous in toy: 3 \(crane\) or 4 \(crane\)"):
        classifier.class_index("crane")
    with pytest.raises(ClassIndexError, match=r"^'CAT' is ambiguous in toy: 0 \(Cat\) or 1 \(cat\)"):
        classifier.class_index("CAT")
    with pytest.raises(ClassIndexError, match="^class index 5 is out of range: toy classes are 0..4$"):
        classifier.class_index(5)
    with pytest.raises(ClassIndexError, match=r"unknown toy class name 'dog bones': did you mean 'dog bone' \(2\)"):
        classifier.class_index("dog bones")
    # an ImageNet classifier gives ImageNet's message, glosses and all
    imagenet_classifier = Classifier("vgg16", None, None, (8, 8), "conv", class_names())
    with pytest.raises(ClassIndexError, match=r"'crane' is ambiguous in vgg16: 134 \(crane, the bird"):
        imagenet_classifier.class_index("crane")
    assert imagenet_classifier.class_index("tiger cat") == 282


@pytest.mark.parametrize("bad", [1000, -1])
def test_class_index_of_bad_int(bad):
    with pytest.raises(ClassIndexError) as info:
        class_index_of(bad)
    assert str(info.value) == f"class index {bad} is out of range: ImageNet classes are 0..999"
    assert isinstance(info.value, (IndexError, HelpersError))


def test_class_index_of_unknown_name_suggests():
    with pytest.raises(ClassIndexError, match=r"did you mean 'tiger cat' \(282\)"):
        class_index_of("tigercat")


def test_class_index_of_unknown_name_without_close_match():
    with pytest.raises(ClassIndexError, match="class_names"):
        class_index_of("qqqqqqqqqqqqqqqqqqqqqq")


@pytest.mark.parametrize("bad", [True, 2.5, None])
def test_class_index_of_wrong_type(bad):
    with pytest.raises(ClassIndexError):
        class_index_of(bad)


def test_class_index_is_cached():
    assert imagenet.class_index() is imagenet.class_index()
