"""The real offline model (EfficientNet-Lite0) on real photos: predictions and where the maps look."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import CAT_BOX, DOG_BOX, REPO
from helpers import explain_classes
from helpers.explain import model_input
from helpers.imagenet import decode_predictions

DOG_BREEDS = range(151, 269)  # ImageNet classes 151..268 are dog breeds
DOMESTIC_CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


def top(classifier, photo, k=5):
    resized, _ = model_input(classifier, photo)
    return decode_predictions(classifier.logits(resized[None])[0], top=k)


def mass_share(heatmap, box, shape):
    """Share of the map's total mass inside ``box``, with the map laid over the whole photo."""
    heatmap = cv2.resize(np.asarray(heatmap, np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    x0, y0, x1, y1 = box
    return float(heatmap[y0:y1, x0:x1].sum() / heatmap.sum())


def test_cat_dog_top1_is_a_dog_breed_and_tiger_cat_is_in_the_top5(lite0, cat_dog):
    predictions = top(lite0, cat_dog)
    assert predictions[0].index in DOG_BREEDS and predictions[0].name == "bull_mastiff"
    assert 282 in [p.index for p in predictions]


def test_chelsea_is_a_domestic_cat_with_tiger_cat_in_the_top3(lite0, chelsea):
    predictions = top(lite0, chelsea, k=3)
    assert predictions[0].index in DOMESTIC_CATS
    assert 282 in [p.index for p in predictions]
    assert predictions[0].probability == pytest.approx(0.79, abs=0.01)


def _draw(photo, maps, path: Path):
    """Save the photo with both boxes and the two maps, to look at when a test fails."""
    panels = []
    for heatmap in maps:
        from helpers.viz import overlay

        picture = overlay(photo, heatmap)
        for box, colour in ((DOG_BOX, (0, 255, 0)), (CAT_BOX, (255, 0, 255))):
            cv2.rectangle(picture, box[:2], box[2:], colour, 3)
        panels.append(picture)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.hstack(panels), cv2.COLOR_RGB2BGR))


def test_dog_map_looks_at_the_dog_and_cat_map_at_the_cat(lite0, cat_dog):
    dog, cat = explain_classes(lite0, cat_dog, ["bull mastiff", "tiger cat"])
    _draw(cat_dog, [dog["gradcam"].map, cat["gradcam"].map], REPO / "artifacts" / "cat_dog_regions.png")
    shape = cat_dog.shape[:2]
    dog_on_dog = mass_share(dog["gradcam"].map, DOG_BOX, shape)
    cat_on_cat = mass_share(cat["gradcam"].map, CAT_BOX, shape)
    assert dog_on_dog > 0.5 and dog_on_dog > 4 * mass_share(dog["gradcam"].map, CAT_BOX, shape)
    assert cat_on_cat > 0.5 and cat_on_cat > 2 * mass_share(cat["gradcam"].map, DOG_BOX, shape)
    # Guided Grad-CAM keeps the class discrimination at pixel resolution
    dog_detail = np.abs(dog["guided_gradcam"].map).sum(axis=-1)
    cat_detail = np.abs(cat["guided_gradcam"].map).sum(axis=-1)
    assert mass_share(dog_detail, DOG_BOX, shape) > 0.5
    assert mass_share(cat_detail, CAT_BOX, shape) > 0.5


def test_the_top_class_counterfactual_differs_from_its_grad_cam(lite0, cat_dog):
    [result] = explain_classes(lite0, cat_dog, top_k=1, guided=False)
    cam, counter = result["gradcam"].map, result["counterfactual"].map
    assert np.isfinite(counter).all() and counter.min() >= 0.0 and counter.max() <= 1.0
    assert np.corrcoef(cam.ravel(), counter.ravel())[0, 1] < 0.5
    # the evidence *for* the dog is not where removing things would help the dog
    assert mass_share(counter, DOG_BOX, cat_dog.shape[:2]) < mass_share(cam, DOG_BOX, cat_dog.shape[:2])
