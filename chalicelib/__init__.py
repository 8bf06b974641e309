"""Control plane of chime-dialout (deployed to Lambda with app.py). Import submodules by path."""
