"""The embedded default: a tiny base policy and a math task it can learn, built on a laptop CPU.

``asymrl.toy.task`` generates problems with worked solutions, ``asymrl.toy.tokenizer`` builds a
character-level tokenizer with a chat template, ``asymrl.toy.build`` warm-starts a small Llama on
the worked solutions (``python -m asymrl.toy.build --preset tiny``), and ``asymrl.toy.report`` measures
the result.
"""
