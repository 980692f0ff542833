from django.contrib.auth import get_user_model
from django.test import TestCase
from django.urls import reverse

from accounts.signals import user_signed_up

PASSWORD = "correct-horse-battery-staple-42"


class SignupTests(TestCase):
    def test_signup_page_renders(self):
        response = self.client.get(reverse("accounts:signup"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Create your account")

    def test_signup_creates_user_and_logs_in(self):
        response = self.client.post(
            reverse("accounts:signup"),
            {"username": "grace", "email": "grace@example.com", "password1": PASSWORD, "password2": PASSWORD},
        )
        self.assertRedirects(response, reverse("accounts:profile"))
        user = get_user_model().objects.get(username="grace")
        self.assertEqual(user.email, "grace@example.com")
        self.assertEqual(int(self.client.session["_auth_user_id"]), user.pk)

    def test_signup_sends_user_signed_up_signal(self):
        received = []

        def receiver(sender, user, request, **kwargs):
            received.append(user.username)

        user_signed_up.connect(receiver)
        try:
            self.client.post(
                reverse("accounts:signup"),
                {"username": "grace", "email": "grace@example.com", "password1": PASSWORD, "password2": PASSWORD},
            )
        finally:
            user_signed_up.disconnect(receiver)
        self.assertEqual(received, ["grace"])

    def test_logged_in_user_is_sent_to_profile(self):
        user = get_user_model().objects.create_user("ada", "ada@example.com", PASSWORD)
        self.client.force_login(user)
        self.assertRedirects(self.client.get(reverse("accounts:signup")), reverse("accounts:profile"))

    def test_signup_rejects_duplicate_email(self):
        get_user_model().objects.create_user("first", "taken@example.com", PASSWORD)
        response = self.client.post(
            reverse("accounts:signup"),
            {"username": "second", "email": "TAKEN@example.com", "password1": PASSWORD, "password2": PASSWORD},
        )
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "already exists")
        self.assertFalse(get_user_model().objects.filter(username="second").exists())

    def test_signup_rejects_mismatched_passwords(self):
        response = self.client.post(
            reverse("accounts:signup"),
            {"username": "grace", "email": "grace@example.com", "password1": PASSWORD, "password2": "different"},
        )
        self.assertEqual(response.status_code, 200)
        self.assertFalse(get_user_model().objects.filter(username="grace").exists())


class LoginLogoutTests(TestCase):
    def setUp(self):
        self.user = get_user_model().objects.create_user("ada", "ada@example.com", PASSWORD)

    def test_login_redirects_to_profile(self):
        response = self.client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
        self.assertRedirects(response, reverse("accounts:profile"))

    def test_login_with_wrong_password_fails(self):
        response = self.client.post(reverse("login"), {"username": "ada", "password": "wrong"})
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_logout_redirects_home(self):
        self.client.force_login(self.user)
        response = self.client.post(reverse("logout"))
        self.assertRedirects(response, reverse("core:landing"))
        self.assertNotIn("_auth_user_id", self.client.session)


class ProfileTests(TestCase):
    def test_profile_requires_login(self):
        response = self.client.get(reverse("accounts:profile"))
        self.assertRedirects(response, f"{reverse('login')}?next={reverse('accounts:profile')}")

    def test_profile_shows_user_details(self):
        user = get_user_model().objects.create_user("ada", "ada@example.com", PASSWORD)
        self.client.force_login(user)
        response = self.client.get(reverse("accounts:profile"))
        self.assertContains(response, "ada@example.com")
