from django.urls import path

from . import views

urlpatterns = [
    path("members/", views.join),
    path("checkout/", views.checkout),
    path("members/<int:member_id>/", views.member),
]
