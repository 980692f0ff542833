from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The project's user model.

    Starting with a custom user model (even an empty one) lets the schema grow
    later, e.g. with profile fields, without a painful migration.
    """
