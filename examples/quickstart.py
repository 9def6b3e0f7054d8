"""The README's Python quick start (python/tests runs it): a toy sentiment task on the
committed models/unplug-mini, tuned, localized, evaluated, saved. Run from the
repository root after `pip install .`."""
import random
import unplug

random.seed(0)
def rows(n):  # a toy sentiment task: one polar word decides the label
    pos, neg = ["good", "great", "fine"], ["bad", "awful", "boring"]
    fill = ["the film", "this movie", "the story", "was", "is", "very", "and", "it"]
    out = []
    for _ in range(n):
        y = random.random() < 0.5
        w = random.sample(fill, 4) + [random.choice(pos if y else neg)]
        random.shuffle(w)
        out.append((" ".join(w), "positive" if y else "negative"))
    return out

m = unplug.Model("models/unplug-mini")
print(m)
print(m.embed(["a fine film"], pooling="mean", normalize=True).shape)

train, val, test = rows(2000), rows(400), rows(400)
ex = unplug.tune(m, train, val, epochs=2, prompts=8, max_len=32)
print("tuned:", ex.result["val"], "on validation")

pr = unplug.localize(m, ex, train, val, tolerance=1.0, max_examples=500, search_steps=5)
info = pr.info
print(f"pruned {info['ratio']:.1%} of the FFN, {info['kept_ffn']} of {info['total_ffn']} neurons kept")
print(pr.classify(["what a boring film", "the story was great"]))
print(pr.predict_proba(["what a boring film"]).round(3))

r = unplug.evaluate(m, pr, full=ex, test=test)
print("accuracy", r["full"]["accuracy"], "->", r["expert"]["accuracy"],
      "| speed-up at 32 x 32:", round(r["timing"][0]["speedup"], 2))

pr.save("sentiment.expert")
assert unplug.Expert.load(m, "sentiment.expert").classify(["the story was great"]) == ["positive"]
