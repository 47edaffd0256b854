"""Hugging Face Spaces entry point: the zoo's Gradio app (demos/app.py) on the bundled presets.

Spaces (sdk: gradio) runs `python app.py` from the repository root after installing
requirements.txt; it sets GRADIO_SERVER_NAME=0.0.0.0. Locally `python app.py` serves on
127.0.0.1:7860, like `python -m demos`. ZOO_DEMO_DATABASE picks the retrieval database
(default "auto": each hashing preset searches the shipped sample of its own data set's test
split, demos/data; no download). ZOO_DEMO_CONCURRENCY and ZOO_DEMO_MAX_QUEUE set the queue
(default 2 at a time, 64 waiting: a free CPU Space has 2 vCPUs).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # zoo/ and demos/ without pip install -e
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from demos.app import create_app, launch  # noqa: E402

demo = create_app(database=os.environ.get("ZOO_DEMO_DATABASE", "auto"))

if __name__ == "__main__":
    launch(demo, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
