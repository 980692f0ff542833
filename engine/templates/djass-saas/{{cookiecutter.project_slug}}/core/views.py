from django.shortcuts import render
{% if cookiecutter.generate_blog == 'y' %}
from blog.models import Post
{% endif %}

def landing(request):
    """Public landing page."""
    context = {}
{%- if cookiecutter.generate_blog == 'y' %}
    context["latest_posts"] = Post.objects.published()[:3]
{%- endif %}
    return render(request, "core/landing.html", context)
