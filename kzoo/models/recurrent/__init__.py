from kzoo.models.recurrent.recurrent_classifier import RecurrentClassifier  # noqa: F401
from kzoo.models.recurrent.recurrent_regressor import RecurrentRegressor  # noqa: F401
