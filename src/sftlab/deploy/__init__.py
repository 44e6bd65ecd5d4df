"""deploy: predict.py (files) and serve.py (HTTP) on a trained run, on the backend asked for"""
