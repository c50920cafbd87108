"""`python -m sentiment_trainer`: the same Typer app as the `sentiment-trainer` console script."""

from sentiment_trainer.cli import main

if __name__ == "__main__":
    main()
