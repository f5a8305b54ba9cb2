"""Seeded text generator shared by the scripts in scripts/pretrained/.

`corpus(seed, n_chars)` returns a deterministic mix of documents: templated English prose (a small
grammar, so that a tiny language model has something learnable), source code in several
languages, numbers/dates/prices, accented European text, CJK (Chinese, Japanese, Korean), Arabic,
Devanagari, Cyrillic, Greek, emoji (with ZWJ sequences and skin tones), and whitespace oddities
(tabs, indentation, runs of spaces, blank lines). Only Python's `random.Random(seed)` is used, so
the same seed gives the same text on every machine and Python 3 version.
"""

import random

# ---------------------------------------------------------------------------------------------
# English: a small grammar

ADJ = ["quick", "lazy", "small", "bright", "old", "young", "quiet", "heavy", "cold", "warm",
       "green", "red", "happy", "strange", "simple", "careful", "busy", "gentle", "brave", "tired"]
NOUN = ["fox", "dog", "cat", "river", "model", "state", "signal", "machine", "teacher", "student",
        "city", "garden", "window", "computer", "network", "bird", "mountain", "engineer", "book",
        "kernel", "matrix", "tree", "ship", "farmer", "child", "letter", "sequence", "token"]
VERB = ["sees", "follows", "finds", "builds", "reads", "watches", "moves", "carries", "likes",
        "remembers", "changes", "opens", "learns", "writes", "helps", "jumps over", "waits for"]
ADV = ["slowly", "quickly", "again", "today", "every morning", "at night", "once more", "always",
       "never", "carefully", "in silence", "without a word"]
NAME = ["Alice", "Bob", "Carol", "Dave", "Eve", "Mallory", "Trent", "Peggy", "Victor", "Walter"]
PLACE = ["Paris", "Tokyo", "Lagos", "Lima", "Oslo", "Cairo", "Delhi", "Quito", "Seoul", "Perth"]
CONNECT = ["and then", "but", "because", "so", "while", "although", "after", "before"]
CONTRACT = ["It's", "Don't", "I'm", "We're", "They've", "You'll", "She'd", "Isn't", "Can't",
            "Won't", "Let's", "That's", "He's", "I've", "We'd", "You're", "THAT'S", "IT'S"]


def _np(r):
    return f"the {r.choice(ADJ)} {r.choice(NOUN)}" if r.random() < 0.6 else f"the {r.choice(NOUN)}"


def _clause(r):
    subj = r.choice(NAME) if r.random() < 0.3 else _np(r)
    s = f"{subj} {r.choice(VERB)} {_np(r)}"
    if r.random() < 0.4:
        s += " " + r.choice(ADV)
    if r.random() < 0.15:
        s += f" in {r.choice(PLACE)}"
    return s


def sentence(r):
    s = _clause(r)
    if r.random() < 0.35:
        s += f" {r.choice(CONNECT)} {_clause(r)}"
    if r.random() < 0.12:
        s = f"{r.choice(CONTRACT)} true: {s}"
    s = s[0].upper() + s[1:]
    end = r.choices([".", "!", "?", "...", ";"], weights=[80, 6, 8, 3, 3])[0]
    if r.random() < 0.08:
        s = f"\"{s}{end}\" said {r.choice(NAME)}."
        return s
    return s + end


def prose(r):
    paras = []
    for _ in range(r.randint(1, 3)):
        paras.append(" ".join(sentence(r) for _ in range(r.randint(2, 6))))
    return "\n\n".join(paras)


# ---------------------------------------------------------------------------------------------
# Code

IDENT = ["value", "count", "state", "buffer", "index", "result", "weights", "token_ids", "hidden",
         "step", "delta", "scale", "x", "y", "n", "i", "j", "tmp", "config", "layer"]


def code(r):
    kind = r.choice(["python", "swift", "c", "json", "shell"])
    a, b, c = r.sample(IDENT, 3)
    k = r.randint(0, 999)
    if kind == "python":
        return (f"def update_{a}({b}, {c}={k}):\n"
                f"    \"\"\"Return the new {a}.\"\"\"\n"
                f"    for i in range(len({b})):\n"
                f"        if {b}[i] > {c}:\n"
                f"            {b}[i] -= {c}  # clamp\n"
                f"    return {{'{a}': {b}, 'n': {r.randint(1, 64)}}}\n")
    if kind == "swift":
        return (f"public func {a}(_ {b}: [Float], {c}: Int = {k}) -> Float {{\n"
                f"    var sum: Float = 0\n"
                f"    for v in {b} where v.isFinite {{\n"
                f"        sum += v * Float({c})\n"
                f"    }}\n"
                f"    return sum / Float(max({b}.count, 1))\n"
                f"}}\n")
    if kind == "c":
        return (f"static int {a}(const float *{b}, size_t {c}) {{\n"
                f"\tint acc = {k};\n"
                f"\tfor (size_t i = 0; i < {c}; ++i) {{\n"
                f"\t\tacc += (int)({b}[i] * 0.5f);\n"
                f"\t}}\n"
                f"\treturn acc != 0 ? acc : -1;\n"
                f"}}\n")
    if kind == "json":
        return (f"{{\n  \"{a}\": {k},\n  \"{b}\": [{r.randint(0, 9)}, {r.randint(10, 99)}, "
                f"{r.random():.4f}],\n  \"{c}\": {{\"enabled\": true, \"name\": \"{r.choice(NAME)}\"}}\n}}\n")
    return (f"$ export {a.upper()}={k}\n"
            f"$ ./run.sh --{b} {r.randint(1, 8)} --{c}=\"{r.choice(PLACE)}\" && echo ok\n"
            f"ok\n")


# ---------------------------------------------------------------------------------------------
# Numbers

def numbers(r):
    parts = [
        f"In {r.randint(1900, 2030)} the population was {r.randint(1000, 99999999):,}.",
        f"The price rose from ${r.randint(1, 999)}.{r.randint(0, 99):02d} to ${r.randint(1000, 9999)}.{r.randint(0, 99):02d}.",
        f"Call +{r.randint(1, 99)} {r.randint(100, 999)} {r.randint(1000, 9999)} before {r.randint(1, 12)}:{r.randint(0, 59):02d} pm.",
        f"pi = 3.14159265358979, e = 2.71828, and {r.randint(10**11, 10**15)} is a long number.",
        f"Version {r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)} fixed bug #{r.randint(1, 99999)}.",
        f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(1990, 2030)} {r.randint(0, 100)}% 1e-{r.randint(1, 12)} 0x{r.randint(0, 2**32):08x}",
    ]
    r.shuffle(parts)
    return " ".join(parts[: r.randint(2, len(parts))])


# ---------------------------------------------------------------------------------------------
# Other languages and scripts (short hand-written phrases, recombined)

FRENCH = ["Le café est très chaud ce matin.", "Où est la bibliothèque ?", "Ça va très bien, merci !",
          "L'élève écrit une lettre à sa sœur.", "Noël à Montréal, c'est magnifique."]
GERMAN = ["Die Straße ist lang und schön.", "Über den Wolken muss die Freiheit grenzenlos sein.",
          "Grüße aus München!", "Das Mädchen läuft schnell."]
SPANISH = ["¿Dónde está el niño?", "¡Qué día más bonito!", "La canción del año es increíble.",
           "Mañana iré a España."]
VIET = ["Tiếng Việt có nhiều dấu.", "Xin chào, bạn khỏe không?", "Hà Nội là thủ đô."]
CHINESE = ["我们今天去公园散步。", "这个模型非常小，但是可以学习。", "天气很好，阳光明媚。", "机器学习是人工智能的一部分。",
           "状态空间模型可以处理很长的序列。"]
JAPANESE = ["今日は良い天気ですね。", "東京タワーに行きました。", "ありがとうございます！", "カタカナとひらがなと漢字。"]
KOREAN = ["안녕하세요, 만나서 반갑습니다.", "오늘은 날씨가 좋아요.", "한국어를 공부합니다."]
ARABIC = ["مرحبا بالعالم", "اللغة العربية جميلة جدا.", "كيف حالك اليوم؟"]
HINDI = ["नमस्ते दुनिया", "मुझे हिंदी पसंद है।", "आज मौसम अच्छा है।"]
RUSSIAN = ["Привет, мир!", "Москва — столица России.", "Я люблю читать книги."]
GREEK = ["Γειά σου κόσμε!", "Η Αθήνα είναι όμορφη.", "Καλημέρα σε όλους."]
EMOJI = ["🙂", "😂", "🚀", "🎉", "❤️", "👍", "👍🏽", "👋🏿", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇫🇷",
         "✨", "🔥", "☕", "🐍", "🦀", "🧑🏻‍🔬", "✅"]


def world(r):
    pools = [FRENCH, GERMAN, SPANISH, VIET, CHINESE, JAPANESE, KOREAN, ARABIC, HINDI, RUSSIAN, GREEK]
    out = []
    for _ in range(r.randint(1, 4)):
        s = r.choice(r.choice(pools))
        if r.random() < 0.4:
            s += " " + "".join(r.choice(EMOJI) for _ in range(r.randint(1, 3)))
        out.append(s)
    return " ".join(out)


def chat(r):
    e = r.choice(EMOJI)
    return f"{r.choice(NAME)}: {sentence(r)} {e}\n{r.choice(NAME)}: {r.choice(CONTRACT)} fine {e}{e}"


TRAIL = ["", " ", "  ", "\t"]


def whitespace(r):
    lines = []
    for _ in range(r.randint(2, 5)):
        indent = r.choice(["", "  ", "    ", "\t", "        ", "\t\t", "   "])
        gap = " " * r.randint(1, 6)
        tail = r.choice(TRAIL)
        lines.append(f"{indent}{r.choice(NOUN)}{gap}{r.choice(ADJ)}{tail}")
    return r.choice(["\n", "\n\n", "\r\n", "\n \n"]).join(lines)


KINDS = [(prose, 55), (code, 14), (numbers, 9), (world, 12), (chat, 5), (whitespace, 5)]


def document(r):
    fns, weights = zip(*KINDS)
    return r.choices(fns, weights=weights)[0](r)


def documents(seed, n_chars):
    """A list of documents whose total length is at least n_chars characters."""
    r = random.Random(seed)
    docs, total = [], 0
    while total < n_chars:
        d = document(r)
        docs.append(d)
        total += len(d) + 1
    return docs


def corpus(seed, n_chars, sep="\n"):
    return sep.join(documents(seed, n_chars))


if __name__ == "__main__":
    print(corpus(0, 3000))
