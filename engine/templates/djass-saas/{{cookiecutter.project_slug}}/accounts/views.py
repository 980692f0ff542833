from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from accounts.forms import SignupForm
from accounts.signals import user_signed_up


def signup(request):
    """Create an account with a username, email and password, then log in."""
    if request.user.is_authenticated:
        return redirect("accounts:profile")
    if request.method == "POST":
        form = SignupForm(request.POST)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            user_signed_up.send(sender=user.__class__, user=user, request=request)
            messages.success(request, "Welcome aboard! Your account is ready.")
            return redirect("accounts:profile")
    else:
        form = SignupForm()
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def profile(request):
    """The signed-in user's account page."""
    return render(request, "accounts/profile.html")
