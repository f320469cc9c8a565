"""Model-free text analysis for the core tasks: sentence splitting, keyword classification, extractive summaries."""

import re
from collections import Counter

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n{2,}|\n(?=\s*[-*\u2022]\s)")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "please",
        "thanks",
        "thank",
        "hi",
        "hello",
        "dear",
        "regards",
    ]
)


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return WORD.findall(text.lower())


def stem(word: str) -> str:
    """A light suffix-stripping stemmer: enough to match 'billing'/'billed'/'bills' to 'bill'."""
    for suffix in ("ingly", "edly", "ings", "ing", "ied", "ies", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix in ("ied", "ies"):
                return base + "y"
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "aeiouls":
                base = base[:-1]
            return base
    return word


def split_sentences(text: str) -> list[str]:
    return [sentence.strip() for sentence in SENTENCE_END.split(text.strip()) if sentence and sentence.strip()]


def classify(text: str, labels: list[str], keywords: dict[str, list[str]] | None = None) -> str:
    """The label whose name and keywords occur most in the text (stemmed); ties go to the earlier label.

    Multi-word keywords count as phrases. With no evidence for any label, the first label is the answer.
    """
    if not labels:
        raise ValueError("no labels to choose from")
    stems = Counter(stem(word) for word in words(text))
    lowered = " " + " ".join(words(text)) + " "
    best_label, best_score = labels[0], 0.0
    for label in labels:
        terms = [label, *((keywords or {}).get(label, []))]
        score = 0.0
        for term in terms:
            term_words = words(str(term))
            if len(term_words) > 1:
                score += 2 * lowered.count(" " + " ".join(term_words) + " ")
            elif term_words:
                score += stems[stem(term_words[0])]
        if score > best_score:
            best_label, best_score = label, score
    return best_label


def summarize(text: str, max_sentences: int = 3) -> str:
    """The ``max_sentences`` most informative sentences, in their original order.

    A sentence scores the average document frequency of its content words (stemmed), so sentences about what the
    text is mostly about win; the first sentence gets a small bonus, as it usually states the subject.
    """
    sentences = split_sentences(text)
    if len(sentences) <= max_sentences:
        return " ".join(sentences)
    frequencies = Counter(stem(word) for word in words(text) if word not in STOPWORDS)

    def score(position: int, sentence: str) -> float:
        content = [stem(word) for word in words(sentence) if word not in STOPWORDS]
        if not content:
            return 0.0
        return sum(frequencies[word] for word in content) / len(content) + (0.5 if position == 0 else 0.0)

    ranked = sorted(range(len(sentences)), key=lambda index: (-score(index, sentences[index]), index))
    return " ".join(sentences[index] for index in sorted(ranked[:max_sentences]))
