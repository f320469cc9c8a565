from apps.accounts.views import UserViewSet

routes = [("users", UserViewSet, "users")]
