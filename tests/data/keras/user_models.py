"""Keras models for tests/algorithms/test_tensorflow.py, in the form users give them to
`hwsim export --framework tensorflow --model tests/data/keras/user_models.py:FUNCTION`.

This file runs only in the TensorFlow venv (.venv-tf): keras_worker imports it there.
"""

import keras


def small():
    """Conv 3×3 stride 2 'same' (tanh), max-pool 2, dense 16 (sigmoid), dense 3. Forward MACs per
    12×12×3 image: 6·6·8·27 = 7,776 + 72·16 = 1,152 + 16·3 = 48, i.e. 8,976."""
    x = keras.Input((12, 12, 3))
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="tanh")(x)
    h = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(h))
    h = keras.layers.Dense(16, activation="sigmoid")(h)
    return keras.Model(x, keras.layers.Dense(3)(h))


def average_pooled():
    """AveragePooling2D: TensorFlow differentiates it into AvgPoolGrad, which tf2onnx cannot convert."""
    x = keras.Input((8, 8, 1))
    h = keras.layers.AveragePooling2D(2)(keras.layers.Conv2D(4, 3)(x))
    return keras.Model(x, keras.layers.Dense(3)(keras.layers.Flatten()(h)))


def not_a_model():
    return [keras.layers.Dense(3)]
