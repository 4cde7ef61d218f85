from django.urls import path

from . import views

app_name = "mam"

urlpatterns = [
    path("token", views.TokenView.as_view(), name="token"),
    path("register", views.RegisterView.as_view(), name="register"),
    path("checkin", views.CheckinView.as_view(), name="checkin"),
    path("wipes/<str:wipe_id>/confirm", views.WipeConfirmView.as_view(), name="wipe-confirm"),
]
