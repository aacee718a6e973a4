"""Answers: canonical answer strings and answer extraction from generated text.

One floor below store, env, executor and collect, because replay stores,
collection and the online runtime must all read and compare answers the same way.
"""
