"""The ``github`` integration: open, comment on and label issues; react to opened issues and new comments."""

from apps.integrations.connectors.base import (
    AuthType,
    ConnectorSpec,
    DataType,
    EventField,
    OAuth2Spec,
    Param,
    RetryPolicy,
    SignatureScheme,
    TaskSpec,
    TriggerSpec,
)

# Creating issues and comments takes no idempotency key: a retry after a lost response may repeat it, so they retry
# sparingly. Adding labels is idempotent (a label already present is kept once).
CREATE_RETRY = RetryPolicy(max_retries=2, backoff_seconds=2.0, time_limit_seconds=30)
IDEMPOTENT_RETRY = RetryPolicy(max_retries=5, backoff_seconds=1.0, time_limit_seconds=30)

REPO = Param("repo", DataType.STRING, "The repository as 'owner/name', e.g. 'octocat/hello-world'.")

CONNECTOR = ConnectorSpec(
    name="GitHub",
    short_name="github",
    class_name="GitHubIntegration",
    auth_type=AuthType.OAUTH2,
    description="GitHub repositories: open issues, comment on them and add labels, and start flows when an issue is "
    "opened or commented on.",
    base_url_setting="NEENA_GITHUB_BASE_URL",
    oauth2=OAuth2Spec(
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",
        scopes=("repo",),
    ),
    tasks=(
        TaskSpec(
            task_name="Create GitHub Issue",
            python_method_name="create_issue",
            description="Create or open an issue in a GitHub repository, e.g. file a bug report from a ticket.",
            parameters=(
                REPO,
                Param("title", DataType.STRING, "The issue's title."),
                Param(
                    "body", DataType.TEXT, "The issue's description; Markdown is allowed.", optional=True, default=""
                ),
                Param("labels", DataType.LIST, "Label names to add to the issue.", optional=True, default=[]),
            ),
            outputs=(
                Param("issue_number", DataType.INT, "The new issue's number within the repository."),
                Param("html_url", DataType.URL, "The issue's web address."),
            ),
            side_effect=True,
            retry=CREATE_RETRY,
        ),
        TaskSpec(
            task_name="Comment on GitHub Issue",
            python_method_name="comment_on_issue",
            description="Comment on or reply to a GitHub issue or pull request.",
            parameters=(
                REPO,
                Param("issue_number", DataType.INT, "The number of the issue or pull request to comment on."),
                Param("body", DataType.TEXT, "The comment text; Markdown is allowed."),
            ),
            outputs=(
                Param("comment_id", DataType.INT, "The ID of the new comment."),
                Param("html_url", DataType.URL, "The comment's web address."),
            ),
            side_effect=True,
            retry=CREATE_RETRY,
        ),
        TaskSpec(
            task_name="Add GitHub Label",
            python_method_name="add_labels",
            description="Add labels to a GitHub issue or pull request, e.g. label it 'bug' or 'needs-triage'.",
            parameters=(
                REPO,
                Param("issue_number", DataType.INT, "The number of the issue or pull request to label."),
                Param("labels", DataType.LIST, "Label names to add; labels already on the issue are kept."),
            ),
            outputs=(Param("labels", DataType.LIST, "All labels on the issue after the change."),),
            side_effect=True,
            retry=IDEMPOTENT_RETRY,
        ),
    ),
    triggers=(
        TriggerSpec(
            trigger_name="GitHub Issue Opened",
            python_method_name="issue_opened",
            description="Start a flow when an issue is opened in a GitHub repository (issues event, action 'opened').",
            event_fields=(
                EventField("issue_number", "$.issue.number", DataType.INT, "The issue's number within the repository."),
                EventField("title", "$.issue.title", DataType.STRING, "The issue's title."),
                EventField("body", "$.issue.body", DataType.TEXT, "The issue's description.", optional=True),
                EventField("repo", "$.repository.full_name", DataType.STRING, "The repository as 'owner/name'."),
                EventField("sender", "$.sender.login", DataType.STRING, "The login of the user who opened it."),
                EventField("action", "$.action", DataType.STRING, "The event's action, 'opened'."),
            ),
            entity_id_field="issue_number",
            signature_scheme=SignatureScheme.GITHUB_SHA256,
        ),
        TriggerSpec(
            trigger_name="GitHub Issue Comment Created",
            python_method_name="issue_comment_created",
            description="Start a flow when someone comments on a GitHub issue or pull request (issue_comment event).",
            event_fields=(
                EventField("issue_number", "$.issue.number", DataType.INT, "The number of the commented issue."),
                EventField("comment_id", "$.comment.id", DataType.INT, "The new comment's ID."),
                EventField("comment_body", "$.comment.body", DataType.TEXT, "The comment text."),
                EventField("repo", "$.repository.full_name", DataType.STRING, "The repository as 'owner/name'."),
                EventField("sender", "$.sender.login", DataType.STRING, "The login of the user who commented."),
            ),
            entity_id_field="issue_number",
            signature_scheme=SignatureScheme.GITHUB_SHA256,
        ),
    ),
)
