from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView

from generation import api as generation_api
from generation import roto_views
from generation import views as generation_views
from portal import api as portal_api
from portal import health, metrics
from portal import views as portal_views
from review import api as review_api
from review import dashboard as review_dashboard
from review import session_media, session_views
from review import views as review_views

handler404 = "portal.api_errors.not_found"  # JSON under /api/, as the schema says
handler400 = "portal.api_errors.bad_request"  # these three too (issue 17, helper "auth")
handler403 = "portal.api_errors.permission_denied"
handler500 = "portal.api_errors.server_error"

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("shots/<int:shot_id>/", generation_views.shot_detail, name="shot-detail"),
    path("shots/<int:shot_id>/requests/new", generation_views.request_new, name="request-new"),
    path("shots/<int:shot_id>/models/<int:model_id>/approve", generation_views.model_approve,
         name="model-approve"),
    path("shows/<slug:show_code>/dashboard/", review_dashboard.dashboard, name="dashboard"),
    path("shows/<slug:show_code>/dashboard.csv", review_dashboard.dashboard_csv, name="dashboard-csv"),
    path("requests/<int:request_id>/", review_views.request_detail, name="request-detail"),
    path("requests/<int:request_id>/audit.csv", generation_views.request_audit_csv, name="request-audit"),
    path("requests/<int:request_id>/cancel", generation_views.request_cancel, name="request-cancel"),
    path("requests/<int:request_id>/reject-all", review_views.reject_all, name="reject-all"),
    path("requests/<int:request_id>/signoff", review_views.signoff, name="signoff"),
    path("variations/<int:variation_id>/pick", review_views.pick, name="pick"),
    path("variations/<int:variation_id>/notes", review_views.note, name="note"),
    path("media/variations/<int:variation_id>/proxy/<int:frame>.jpg", generation_views.variation_proxy,
         name="variation-proxy"),
    path("variations/<int:variation_id>/crop", generation_views.variation_crop, name="variation-crop"),
    path("media/variations/<int:variation_id>/crop/<slug:which>/<int:frame>.jpg", generation_views.variation_crop_image,
         name="variation-crop-image"),
    path("media/requests/<int:request_id>/plate/<int:frame>.jpg", generation_views.plate_proxy, name="plate-proxy"),
    # Roto drawn in the browser: key frames on the plate, passes, corrections (generation/roto_views.py).
    path("shots/<int:shot_id>/roto/", roto_views.roto_list, name="roto-list"),
    path("shots/<int:shot_id>/roto/new", roto_views.roto_new, name="roto-new"),
    path("shots/<int:shot_id>/roto/<slug:name>/", roto_views.roto_detail, name="roto-detail"),
    path("shots/<int:shot_id>/roto/<slug:name>/state.json", roto_views.roto_state, name="roto-state"),
    path("shots/<int:shot_id>/roto/<slug:name>/keys/<int:frame>", roto_views.roto_key_draw, name="roto-key-draw"),
    path("shots/<int:shot_id>/roto/<slug:name>/lock/<int:frame>", roto_views.roto_lock, name="roto-lock"),
    path("shots/<int:shot_id>/roto/<slug:name>/passes", roto_views.roto_pass, name="roto-pass"),
    path("media/shots/<int:shot_id>/plate/<int:frame>.jpg", roto_views.shot_plate_proxy, name="shot-plate-proxy"),
    path("media/shots/<int:shot_id>/roto/<slug:name>/keys/<int:frame>.jpg", roto_views.roto_key_matte,
         name="roto-key-matte"),
    # The JSON API for pipeline clients (token) and scripts.
    path("api/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("api/shows/", portal_api.ShowList.as_view()),
    path("api/shows/<slug:show_code>/shots/", portal_api.ShotList.as_view()),
    path("api/shots/<int:pk>/", portal_api.ShotDetail.as_view()),
    path("api/models/", generation_api.ModelList.as_view()),
    path("api/requests/", generation_api.RequestListCreate.as_view()),
    path("api/requests/<int:pk>/", generation_api.RequestDetail.as_view()),
    path("api/requests/<int:pk>/cancel/", generation_api.RequestCancel.as_view()),
    path("api/requests/<int:pk>/signoff/", review_api.RequestSignOff.as_view()),
    path("api/requests/<int:pk>/send-back/", review_api.RequestSendBack.as_view()),
    path("api/variations/<int:pk>/pick/", review_api.VariationPick.as_view()),
    path("api/releases/", review_api.ReleaseList.as_view()),
    path("api/shows/<slug:show_code>/metrics/", review_dashboard.ShowMetricsView.as_view()),
    path("api/shots/<int:pk>/mattes/", generation_api.ShotReleasedMattes.as_view()),
    path("admin/", admin.site.urls),
    # Operations (issue 17): health for the load balancer and monitoring, metrics for Prometheus.
    path("health/", health.view, name="health"),
    path("metrics", metrics.view, name="metrics"),
]

# --- Auth (issue 17, helper "auth"): the user's own API tokens, and changing one's password (which revokes them).
urlpatterns += [
    path("account/tokens/", portal_views.api_tokens, name="api-tokens"),
    path("account/tokens/<int:token_id>/revoke", portal_views.api_token_revoke, name="api-token-revoke"),
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]

urlpatterns += [  # dailies: review sessions (review/session_views.py)
    path("shows/<slug:show_code>/sessions/", session_views.session_list, name="session-list"),
    path("shows/<slug:show_code>/sessions/new", session_views.session_new, name="session-new"),
    path("sessions/<int:session_id>/", session_views.session_detail, name="session-detail"),
    path("sessions/<int:session_id>/notes", session_views.session_note, name="session-note"),
    path("sessions/<int:session_id>/picks", session_views.session_pick, name="session-pick"),
    path("sessions/<int:session_id>/order", session_views.session_order, name="session-order"),
    path("sessions/<int:session_id>/summary/", session_views.session_summary, name="session-summary"),
    path("sessions/<int:session_id>/summary.csv", session_views.session_summary_csv, name="session-csv"),
    path("sessions/<int:session_id>/playlist.otio", session_views.session_otio, name="session-otio"),
    path("sessions/<int:session_id>/playlist.edl", session_views.session_edl, name="session-edl"),
    path("media/variations/<int:variation_id>/look/<int:frame>.jpg", session_media.variation_look_image,
         name="variation-look"),
    path("media/requests/<int:request_id>/look/<int:frame>.jpg", session_media.plate_look_image, name="plate-look"),
]
