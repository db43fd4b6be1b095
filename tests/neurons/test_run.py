"""The web payload of a neuron run's units."""

import json


def test_the_page_gets_word_pieces_glued_for_every_tokenizer():
    from shatterbox.neurons import unit_payload

    row = {"layer": 1, "unit": 2, "kind": "neuron", "explanation": "x", "flagged": False, "reason": "", "maximum": 2.0,
           "excerpts": json.dumps([{"sentence_id": 0, "tokens": ["\u2581a", "\u2581provocative", "ly", "\u2581woman", "hood"], "activations": [0, 2.0, 1.0, 0, 0]},
                                   {"sentence_id": 1, "tokens": ["provocative", "##ly", "!"], "activations": [2.0, 1.0, 0]}])}
    sentencepiece, wordpiece = unit_payload(row)["excerpts"]
    assert "".join(s + p for s, p in zip(sentencepiece["spaces"], sentencepiece["pieces"])) == "a provocatively womanhood"
    assert "".join(s + p for s, p in zip(wordpiece["spaces"], wordpiece["pieces"])) == "provocatively !"


def test_a_dead_unit_is_marked_and_left_out_of_the_means():
    from shatterbox.neurons import is_dead
    from shatterbox.render.neurons import summary

    assert is_dead(0.0) and is_dead(-0.1) and is_dead(float("nan")) and not is_dead(0.2)
    rows = [{"correlation": 0.6, "random_correlation": 0.1, "flagged": False, "seconds": 0.1, "dead": False},
            {"correlation": None, "random_correlation": None, "flagged": True, "seconds": 0.1, "dead": True}]
    s = summary(rows)
    assert s["dead"] == 1 and s["correlation"]["explanation"] == 0.6 and s["flagged"] == 0.0
