"""Every NasError lives in nas.errors and survives pickling (Ray carries exceptions between
processes by pickling them)."""

import inspect
import pickle

import pytest

import nas
from nas import errors

EXAMPLES = {
    errors.CandidateSyntaxError: ("mobilenetv2:r0", 13, "leading zero"),
    errors.UnknownSpaceError: ("resnet", ["fbnet", "mobilenetv2"]),
    errors.ReferenceNotFoundError: ("mobilenetv2", "resnet50", ["mobilenet_v2_1.0_224"]),
    errors.UnknownDeviceError: ("iphone", ["host", "pixel7"]),
    errors.SearchInterrupted: ("results/run", 3, 10),
    errors.StudyDamagedError: ("results/run/study.db", "file is not a database"),
}
CLASSES = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.NasError)]


def test_every_error_class_is_a_nas_error_in_nas_errors():
    assert set(errors.__all__) == {c.__name__ for c in CLASSES}
    for mod in ("nas.search._driver", "nas.report._report", "nas.data._datasets", "nas.winner._distill", "nas.run._folder",
                "nas.latency._profile",
                "nas.latency._imported"):
        m = __import__(mod, fromlist=["x"])
        own = [n for n, c in inspect.getmembers(m, inspect.isclass)
               if issubclass(c, Exception) and c.__module__ == mod]
        assert own == [], f"{mod} defines {own}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_message_and_attributes(cls):
    exc = cls(*EXAMPLES.get(cls, (f"a {cls.__name__} happened",)))
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls and str(back) == str(exc) and back.args == exc.args
    assert back.__dict__ == exc.__dict__


def test_a_workers_nas_error_reaches_the_driver_with_its_message(ray_session):
    task = ray_session.remote(max_retries=0)(nas.parse_candidate)  # an importable function
    with pytest.raises(Exception) as info:
        ray_session.get(task.remote("mobilenetv2:r224:w1:k3e1"))
    cause = getattr(info.value, "cause", None)
    assert isinstance(cause, errors.CandidateError), repr(info.value)
    assert "stages" in str(cause)  # the real reason, not UnserializableException
